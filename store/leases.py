"""Who holds a running job, and noticing when they are gone: heartbeats and lapsed leases.

A worker owns a job while its lease is in the future. It renews the lease with every
heartbeat; a worker that dies stops renewing, and the next worker to look for work
finds the lapsed lease, marks the attempt interrupted and requeues the job (or fails it
after `max_attempts`). On this host a worker whose process is gone is noticed at once,
without waiting for the lease. Claiming (`store.jobs.claim_next`) requeues lapsed jobs
first, in its own transaction, through `requeue_lapsed_in`.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil
from sqlalchemy import update
from sqlmodel import Session, col, select

from store.db import Store
from store.job_log import add_event, interrupt_runs
from store.models import Job
from store.states import JobStatus
from store.types import utcnow

# A pid is only evidence of life if that process is at least as old as the claim;
# allow for the coarseness of process start times.
_PID_START_SLACK_S = 2.0


class LeaseLost(Exception):
    """This worker no longer holds the job (it was requeued or cancelled under it)."""


@dataclass(frozen=True)
class WorkerIdentity:
    """Who holds a job: the nonce tells two workers in one process apart."""

    id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> WorkerIdentity:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host}:{pid}:{uuid.uuid4().hex[:6]}", host, pid)


def _process_alive(pid: int, since: datetime) -> bool:
    """Whether `pid` is still the process that created a run at `since`.

    A pid that exists but belongs to a process started after the run was created
    has been reused by the OS: the run's own process is gone.
    """
    if not psutil.pid_exists(pid):
        return False
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but cannot be inspected (e.g. another user's): assume alive
    return started <= since.timestamp() + _PID_START_SLACK_S


def _lapsed(job: Job, now: datetime) -> str | None:
    """Why `job`'s worker is considered gone, or None while it may still be alive."""
    if job.worker_host == socket.gethostname() and job.worker_pid is not None:
        since = job.started_at or now
        if not _process_alive(job.worker_pid, since):
            return f"worker process {job.worker_pid} is gone"
    if job.lease_expires_at is not None and job.lease_expires_at < now:
        silent = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at else float("nan")
        return f"lease lapsed (no heartbeat for {silent:.0f} s)"
    return None


def requeue_lapsed_in(session: Session, now: datetime) -> list[int]:
    """Requeue (or fail, after max_attempts) running jobs whose worker is gone, in the
    caller's transaction; returns their ids."""
    touched = []
    for job in session.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all():
        reason = _lapsed(job, now)
        if reason is None:
            continue
        assert job.id is not None
        interrupt_runs(session, job.id, f"interrupted: {reason}")
        worker = job.worker_id
        job.worker_id = job.worker_host = job.worker_pid = None
        job.lease_expires_at = None
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, now
            job.error = f"cancelled; its worker stopped first ({reason})"
            add_event(session, job.id, "cancelled", job.error)
        elif job.attempts >= job.max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, now
            job.error = f"attempt {job.attempts}/{job.max_attempts} interrupted: {reason}; gave up"
            add_event(session, job.id, "failed", job.error)
        else:
            job.status = JobStatus.QUEUED
            job.phase = None
            job.error = f"attempt {job.attempts} interrupted: {reason}"
            add_event(session, job.id, "requeued", f"{job.error} (worker {worker})")
        touched.append(job.id)
    return touched


def requeue_lapsed(store: Store) -> list[int]:
    """Requeue jobs whose worker is gone, now; returns their ids (claiming does this too)."""
    with store.session() as session:
        return requeue_lapsed_in(session, utcnow())


def heartbeat(store: Store, job_id: int, worker_id: str, lease_s: float) -> bool:
    """Renew the lease; True when a cancel was requested. Raises LeaseLost if not ours."""
    with store.session() as session:
        now = utcnow()
        row = session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(
                col(Job.id) == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING
            )
            .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(Job.cancel_requested)
        ).first()
    if row is None:
        raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")
    return bool(row[0])
