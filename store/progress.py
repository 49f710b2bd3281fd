"""What a running job is doing now: its phase, and how far through the phase it is.

The console shows these live, so the worker holding the job writes them as it goes: a
new phase is also a line in the job's event log, while progress within a phase is one
UPDATE of the job row and no event (a phase can have thousands of steps). Only the worker
holding the job may report on it.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from store.db import Store
from store.job_log import add_event
from store.leases import LeaseLost
from store.models import Job
from store.states import JobStatus
from store.types import utcnow


def set_phase(
    store: Store,
    job_id: int,
    worker_id: str,
    phase: str,
    run_id: int | None = None,
    total: int | None = None,
) -> None:
    """What the job is doing now (shown live) and the same line in its event log; the
    phase's progress starts over at 0 of `total` (None: a phase with no step count)."""
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.worker_id != worker_id:
            raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")
        job.phase = phase
        job.phase_step, job.phase_total = (0 if total else None), (total or None)
        job.phase_detail, job.phase_started_at = None, utcnow()
        add_event(session, job_id, "phase", phase, run_id)


def set_phase_progress(
    store: Store, job_id: int, worker_id: str, step: int, detail: str | None
) -> bool:
    """Where the current phase is (step of its total, e.g. "loss 2.41"); one UPDATE, no
    event row (a phase can have thousands of steps). False when the job is not ours."""
    with store.session() as session:
        row = session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(
                col(Job.id) == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING
            )
            .values(phase_step=step, phase_detail=detail)
            .returning(Job.id)
        ).first()
    return row is not None
