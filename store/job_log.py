"""The trail every job state change leaves besides the job row: a line in the job's event
log, and, when a job stops, its still-active runs closed with the reason.

Claiming and finishing (`store.jobs`), lapsed leases (`store.leases`), phase reports
(`store.progress`) and batches (`store.batches`) all write these inside their own
transaction, so the helpers take the caller's session. `log_event` opens its own, for an
event that changes no state (the plan a worker resolved, a retry naming its new job).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from store.db import Store
from store.models import Event, Run
from store.states import ACTIVE_RUN_STATUSES, RunStatus
from store.types import utcnow


def add_event(
    session: Session, job_id: int, kind: str, message: str, run_id: int | None = None
) -> None:
    """One line of the job's event log, in the caller's transaction."""
    session.add(Event(job_id=job_id, run_id=run_id, kind=kind, message=message))


def log_event(
    store: Store, job_id: int, kind: str, message: str, run_id: int | None = None
) -> None:
    with store.session() as session:
        add_event(session, job_id, kind, message, run_id)


def interrupt_runs(
    session: Session, job_id: int, reason: str, status: RunStatus = RunStatus.INTERRUPTED
) -> None:
    """Close the job's runs that are still queued or running, with `reason` as their error."""
    now = utcnow()
    session.exec(  # type: ignore[call-overload]
        update(Run)
        .where(Run.job_id == job_id, col(Run.status).in_(ACTIVE_RUN_STATUSES))
        .values(status=status, error=reason, finished_at=now)
    )
