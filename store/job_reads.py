"""Reading the queue: jobs, their event logs, and the store file's own consistency.

What `bemctl status`, `cancel`, `retry` and the console look up; each read is one
`read_session()` snapshot, so it neither waits for nor blocks a worker's write.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import col, select

from store.db import Store
from store.models import Event, Job, Run
from store.states import ACTIVE_JOB_STATUSES


def job_for_run(store: Store, run_id: int) -> Job | None:
    with store.read_session() as session:
        run = session.get(Run, run_id)
        if run is None or run.job_id is None:
            return None
        return session.get(Job, run.job_id)


def active_jobs_named(store: Store, experiment: str) -> list[Job]:
    with store.read_session() as session:
        return list(
            session.exec(
                select(Job)
                .where(Job.experiment_name == experiment, col(Job.status).in_(ACTIVE_JOB_STATUSES))
                .order_by(col(Job.id))
            ).all()
        )


def list_jobs(store: Store, limit: int = 20) -> list[Job]:
    """Active jobs first (what is queued or running now), then the newest finished ones."""
    with store.read_session() as session:
        active = session.exec(
            select(Job)
            .where(col(Job.status).in_(ACTIVE_JOB_STATUSES))
            .order_by(col(Job.priority).desc(), col(Job.id))
        ).all()
        done = session.exec(
            select(Job)
            .where(col(Job.status).not_in(ACTIVE_JOB_STATUSES))
            .order_by(col(Job.id).desc())
            .limit(limit)
        ).all()
    return [*active, *done]


def get_job(store: Store, job_id: int) -> Job | None:
    with store.read_session() as session:
        return session.get(Job, job_id)


def job_events(store: Store, job_id: int) -> list[Event]:
    with store.read_session() as session:
        return list(
            session.exec(select(Event).where(Event.job_id == job_id).order_by(col(Event.id))).all()
        )


def integrity_ok(store: Store) -> bool:
    """SQLite's own consistency check of the whole file (used after crash tests)."""
    with store.read_session() as session:
        return session.exec(text("PRAGMA integrity_check")).first() == ("ok",)  # type: ignore[call-overload]
