"""The console's queue snapshot: the Queue/Runs table and the status line, one tick each.

Speed matters more than anywhere else in the store: `refresh_snapshot` runs every
`tui.refresh_s` seconds. It reads only the run, job and experiment tables (one row per
run; the progress columns the trainer updates with each step batch), never `step_metric`,
which grows by one row per optimiser step and would make every tick slower as history
accumulates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists
from sqlmodel import col, select

from store.console.phase import PhaseProgress, elapsed_between, phase_progress
from store.db import Store
from store.models import Experiment, Job, Run
from store.states import ACTIVE_JOB_STATUSES, JobStatus, RunStatus
from store.types import utcnow


@dataclass(frozen=True)
class QueueRow:
    """One line of the Queue/Runs table: a run, or a job whose runs do not exist yet.

    `key` is stable across refreshes ("run-12", "job-3"), so the table can update a line
    in place instead of rebuilding itself every tick.
    """

    key: str
    job_id: int | None
    run_id: int | None
    batch_id: str | None
    experiment: str
    role: str
    seed: int | None
    status: str
    job_status: str | None
    current_step: int
    total_steps: int
    last_loss: float | None
    elapsed_s: float | None
    eta_s: float | None
    phase: str | None
    error: str | None
    # the running job's current phase with its step, total, detail and ETA (None otherwise)
    phase_progress: PhaseProgress | None = None

    @property
    def progress(self) -> float | None:
        """Fraction of training steps done (None before the step count is known)."""
        if self.total_steps <= 0:
            return None
        return min(1.0, self.current_step / self.total_steps)


@dataclass(frozen=True)
class Snapshot:
    """What the Queue/Runs screen and the status line show on each tick."""

    taken_at: datetime
    rows: tuple[QueueRow, ...]
    job_counts: dict[str, int]
    workers: tuple[str, ...]  # ids of the workers holding running jobs


def _eta(status: str, elapsed: float | None, current: int, total: int) -> float | None:
    """Remaining training time, assuming the steps still to come take as long as the ones
    done (the run's setup time is folded in, so it errs on the long side early on)."""
    if status != RunStatus.RUNNING or elapsed is None or current <= 0 or total <= current:
        return None
    return elapsed * (total - current) / current


def row_matches(row: QueueRow, text: str | None) -> bool:
    """The console's `/` filter: case-insensitive substring of experiment, status or role."""
    if not text:
        return True
    needle = text.casefold()
    return any(needle in field.casefold() for field in (row.experiment, row.status, row.role))


def queue_rows(store: Store, filter: str | None = None) -> list[QueueRow]:
    """One row per run (newest job first), plus one per queued job and one per running job
    none of whose current runs is running: queued work is visible before a worker starts
    it, and so is what a job does outside its runs (pre-training the base model while both
    runs wait, measuring latency after both have finished) with that phase's progress.
    """
    rows = list(refresh_snapshot(store).rows)
    return [r for r in rows if row_matches(r, filter)]


def refresh_snapshot(store: Store) -> Snapshot:
    """Everything one console tick needs, in one read transaction (three small queries)."""
    now = utcnow()
    with store.read_session() as session:
        # Core execution (no ORM row loading): about half the per-row cost, which is most
        # of a tick's time with a thousand runs.
        conn = session.connection()
        run_rows = conn.execute(
            select(
                Run.id,
                Run.job_id,
                Run.role,
                Run.seed,
                Run.status,
                Run.total_steps,
                Run.current_step,
                Run.last_loss,
                Run.started_at,
                Run.finished_at,
                Run.error,
                Experiment.name,
                Job.batch_id,
                Job.status,
                Job.phase,
                Job.phase_step,
                Job.phase_total,
                Job.phase_detail,
                Job.phase_started_at,
            )
            .join(Experiment, col(Experiment.id) == Run.experiment_id)
            .outerjoin(Job, col(Job.id) == Run.job_id)
        ).all()
        # A queued job never has a run of the attempt it waits for (runs are created by the
        # worker that claims it). A running job gets its own line while none of the runs of
        # its current attempt is running: before they exist, while they wait for the base
        # model's pre-training, and in the job-wide phases after training (latency, memory,
        # statistics); a running run shows the job's phase itself.
        running_run = exists().where(
            and_(
                col(Run.job_id) == Job.id,
                col(Run.attempt) == Job.attempts,
                Run.status == RunStatus.RUNNING,
            )
        )
        job_rows = conn.execute(
            select(
                Job.id,
                Job.batch_id,
                Job.experiment_name,
                Job.status,
                Job.phase,
                Job.error,
                Job.started_at,
                Job.phase_step,
                Job.phase_total,
                Job.phase_detail,
                Job.phase_started_at,
            ).where(
                (Job.status == JobStatus.QUEUED)
                | ((Job.status == JobStatus.RUNNING) & ~running_run)
            )
        ).all()
        counts = conn.execute(
            select(Job.status, Job.worker_id).where(col(Job.status).in_(ACTIVE_JOB_STATUSES))
        ).all()
    rows: list[QueueRow] = []
    for job_id, batch_id, name, status, phase, error, started, *phase_cols in job_rows:
        running = status == JobStatus.RUNNING
        progress = phase_progress(phase, *phase_cols, now) if running else None
        rows.append(
            QueueRow(
                key=f"job-{job_id}",
                job_id=job_id,
                run_id=None,
                batch_id=batch_id,
                experiment=name,
                role="",
                seed=None,
                status=status,
                job_status=status,
                # the line's numbers are its phase's: e.g. pre-training step 340 of 2000
                current_step=(progress.step or 0) if progress else 0,
                total_steps=(progress.total or 0) if progress else 0,
                last_loss=None,
                elapsed_s=elapsed_between(started, None, now) if running else None,
                eta_s=progress.eta_s if progress else None,
                phase=phase if running else None,
                error=error,
                phase_progress=progress,
            )
        )
    for (
        run_id,
        job_id,
        role,
        seed,
        status,
        total,
        current,
        loss,
        started,
        finished,
        error,
        name,
        batch_id,
        job_status,
        phase,
        *phase_cols,
    ) in run_rows:
        elapsed = elapsed_between(started, finished, now)
        live = status == RunStatus.RUNNING and job_status == JobStatus.RUNNING
        rows.append(
            QueueRow(
                key=f"run-{run_id}",
                job_id=job_id,
                run_id=run_id,
                batch_id=batch_id,
                experiment=name,
                role=role,
                seed=seed,
                status=status,
                job_status=job_status,
                current_step=current,
                total_steps=total,
                last_loss=loss,
                elapsed_s=elapsed,
                eta_s=_eta(status, elapsed, current, total),
                phase=phase if live else None,
                error=error,
                phase_progress=phase_progress(phase, *phase_cols, now) if live else None,
            )
        )
    rows.sort(key=_newest_first)
    job_counts = Counter(status for status, _ in counts)
    workers = sorted(
        {worker for status, worker in counts if status == JobStatus.RUNNING and worker}
    )
    return Snapshot(now, tuple(rows), dict(job_counts), tuple(workers))


def _newest_first(row: QueueRow) -> tuple[int, int, int]:
    """Newest job on top; within a job its waiting line first, then runs in creation order.
    Runs without a job (stores from before the queue) sort as the oldest."""
    return (-(row.job_id or 0), 0 if row.run_id is None else 1, row.run_id or 0)
