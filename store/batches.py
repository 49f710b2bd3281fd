"""Batches of jobs (one BH family each): when a batch is decided, and what is left of it.

A batch's verdicts are written once, for all of its jobs together, after the last of
them has finished: `close_batch` runs whichever worker finishes last, and the status
check under the write lock makes sure only one of two racing workers writes them.
`ready_batches` finds batches nothing is left to run for (their last job cancelled while
queued, or failed for good when its lease lapsed); `abandon_batch` stops a whole batch
with no verdicts; `pending_work` tells a `--once` worker whether to keep going.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from store.db import Store
from store.job_log import add_event, interrupt_runs
from store.models import Batch, Job
from store.states import (
    ACTIVE_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    BatchStatus,
    JobStatus,
    RunStatus,
)
from store.types import utcnow


def close_batch(store: Store, batch_id: str, write: Callable[[Session, list[Job]], None]) -> bool:
    """Once every job of the batch is finished, call `write` with its succeeded jobs and
    mark the batch decided, in one transaction. False if jobs are left or it is closed.

    Run by whichever worker finishes last; the status check under the write lock makes
    sure only one of two racing workers writes verdicts.
    """
    with store.session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.status != BatchStatus.OPEN:
            return False
        jobs = list(session.exec(select(Job).where(Job.batch_id == batch_id)).all())
        if any(j.status not in TERMINAL_JOB_STATUSES for j in jobs):
            return False
        write(session, [j for j in jobs if j.status == JobStatus.SUCCEEDED])
        batch.status, batch.decided_at = BatchStatus.DECIDED, utcnow()
        return True


def ready_batches(store: Store) -> list[str]:
    """Open batches with no job left to run: their verdicts are due (e.g. the last job
    was cancelled while queued, or failed for good when its lease lapsed)."""
    with store.read_session() as session:
        active = select(Job.batch_id).where(col(Job.status).in_(ACTIVE_JOB_STATUSES))
        return list(
            session.exec(
                select(Batch.id).where(
                    Batch.status == BatchStatus.OPEN, col(Batch.id).not_in(active)
                )
            ).all()
        )


def abandon_batch(store: Store, batch_id: str, reason: str) -> None:
    """The user stopped the whole batch: cancel what is left, write no verdicts."""
    with store.session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.status != BatchStatus.OPEN:
            return
        now = utcnow()
        for job in session.exec(select(Job).where(Job.batch_id == batch_id)).all():
            assert job.id is not None
            if job.status in ACTIVE_JOB_STATUSES:
                job.status, job.finished_at, job.error = JobStatus.CANCELLED, now, reason
                job.cancel_requested = True
                job.worker_id = job.worker_host = job.worker_pid = None
                interrupt_runs(session, job.id, reason, RunStatus.CANCELLED)
                add_event(session, job.id, "cancelled", reason)
        batch.status, batch.decided_at = BatchStatus.ABANDONED, now


def pending_work(store: Store, heartbeat_s: float, *, batch_id: str | None = None) -> str | None:
    """Why a `--once` worker should keep going: queued jobs, or a running job whose
    heartbeat has gone quiet (its lease is about to lapse and the job will be ours).
    None when nothing is left for this worker.
    """
    with store.read_session() as session:
        now = utcnow()
        quiet = now - timedelta(seconds=2 * heartbeat_s)
        query = select(Job).where(
            or_(
                and_(Job.status == JobStatus.QUEUED, col(Job.cancel_requested).is_(False)),
                and_(
                    Job.status == JobStatus.RUNNING,
                    or_(col(Job.heartbeat_at) < quiet, col(Job.lease_expires_at) < now),
                ),
            )
        )
        if batch_id is not None:
            query = query.where(Job.batch_id == batch_id)
        jobs = session.exec(query.order_by(col(Job.id))).all()
    for job in jobs:
        if job.status == JobStatus.QUEUED:
            return f"job {job.id} is queued"
        return f"job {job.id}'s worker is silent; waiting for its lease to lapse"
    return None


def batch_state(store: Store, batch_id: str) -> tuple[str, list[Job]]:
    with store.read_session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise LookupError(f"batch {batch_id} does not exist")
        jobs = session.exec(select(Job).where(Job.batch_id == batch_id).order_by(col(Job.id)))
        return batch.status, list(jobs.all())
