"""The console's run detail: one run, its loss curve, its job's event log and, for an
online run, its stream timeline.

A run's curve is read on its own, by the indexed `run_id`, and only the points after the
ones the caller already holds: a live view re-reads it every tick, and the curve only
ever grows. The stream is read whole: one row per live batch, a few hundred at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from store import stream
from store.console.phase import PhaseProgress, elapsed_between, phase_progress
from store.db import Store
from store.models import Event, Experiment, Job, Run, StepMetric
from store.states import JobStatus
from store.types import utcnow


@dataclass(frozen=True)
class StepPoint:
    step: int
    loss: float
    lr: float
    elapsed_s: float


@dataclass(frozen=True)
class EventRow:
    at: datetime
    kind: str
    message: str
    run_id: int | None


@dataclass(frozen=True)
class RunInfo:
    id: int
    experiment: str
    role: str
    seed: int
    status: str
    quick: bool
    device: str
    attempt: int
    total_steps: int
    current_step: int
    last_loss: float | None
    started_at: datetime | None
    finished_at: datetime | None
    elapsed_s: float | None
    error: str | None
    job_id: int | None
    batch_id: str | None
    job_status: str | None
    job_phase: str | None
    job_error: str | None
    curve_quantity: str | None = None  # what the step rows measure (None: LM loss)
    job_phase_progress: PhaseProgress | None = None


@dataclass(frozen=True)
class RunDetail:
    """A run, the curve points after `after_step`, its job's whole event log, and its whole
    stream timeline (empty for every run but an online variant's)."""

    run: RunInfo
    steps: tuple[StepPoint, ...]
    events: tuple[EventRow, ...]
    stream_points: tuple[stream.PointRow, ...] = ()
    stream_events: tuple[stream.EventRow, ...] = ()


def run_detail(store: Store, run_id: int, after_step: int = -1) -> RunDetail | None:
    """None when the run does not exist. `after_step` lets a live view fetch only the new
    points of a long curve on each tick (the curve only ever grows)."""
    now = utcnow()
    with store.read_session() as session:
        found = session.exec(
            select(Run, Experiment.name)
            .join(Experiment, col(Experiment.id) == Run.experiment_id)
            .where(col(Run.id) == run_id)
        ).first()
        if found is None:
            return None
        run, name = found
        job = session.get(Job, run.job_id) if run.job_id is not None else None
        steps = session.exec(
            select(StepMetric.step, StepMetric.loss, StepMetric.lr, StepMetric.elapsed_s)
            .where(StepMetric.run_id == run_id, StepMetric.step > after_step)
            .order_by(col(StepMetric.step))
        ).all()
        events = (
            session.exec(
                select(Event.at, Event.kind, Event.message, Event.run_id)
                .where(Event.job_id == job.id)
                .order_by(col(Event.id))
            ).all()
            if job is not None
            else []
        )
        info = RunInfo(
            id=run_id,
            experiment=name,
            role=run.role,
            seed=run.seed,
            status=run.status,
            quick=run.quick,
            device=run.device,
            attempt=run.attempt,
            total_steps=run.total_steps,
            current_step=run.current_step,
            last_loss=run.last_loss,
            started_at=run.started_at,
            finished_at=run.finished_at,
            elapsed_s=elapsed_between(run.started_at, run.finished_at, now),
            error=run.error,
            job_id=run.job_id,
            batch_id=job.batch_id if job else None,
            job_status=job.status if job else None,
            job_phase=job.phase if job else None,
            job_error=job.error if job else None,
            curve_quantity=run.curve_quantity,
            job_phase_progress=(
                phase_progress(
                    job.phase,
                    job.phase_step,
                    job.phase_total,
                    job.phase_detail,
                    job.phase_started_at,
                    now,
                )
                if job is not None and job.status == JobStatus.RUNNING
                else None
            ),
        )
    # events before points: a batch's point and events are written together, so every
    # event read has its point even if a batch lands between the two reads
    stream_events = stream.stream_events(store, run_id)
    stream_points = stream.stream_points(store, run_id)
    return RunDetail(
        info,
        tuple(StepPoint(*s) for s in steps),
        tuple(EventRow(*e) for e in events),
        tuple(stream_points),
        tuple(stream_events),
    )
