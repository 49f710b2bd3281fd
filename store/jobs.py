"""The work queue in SQLite: enqueue, claim under a lease, heartbeat, requeue, cancel, close.

Several worker processes share one database file, so every state change is a single
`BEGIN IMMEDIATE` transaction whose UPDATE re-checks the state it expects (status, owner)
in its WHERE clause and reports through RETURNING whether it won. Two workers can race
for a job; only one UPDATE matches.

A worker owns a job while its lease is in the future. It renews the lease with every
heartbeat; a worker that dies stops renewing, and the next worker to look for work
finds the lapsed lease, marks the attempt interrupted and requeues the job (or fails it
after `max_attempts`). On this host a worker whose process is gone is noticed at once,
without waiting for the lease.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil
from sqlalchemy import and_, or_, text, update
from sqlmodel import Session, col, select

from store.db import Store
from store.models import Batch, Event, Job, Run
from store.states import (
    ACTIVE_JOB_STATUSES,
    ACTIVE_RUN_STATUSES,
    TERMINAL_JOB_STATUSES,  # also imported from here by the console
    BatchStatus,
    JobStatus,
    RunStatus,
)
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


@dataclass(frozen=True)
class QueueEntry:
    experiment_id: int
    experiment_name: str
    spec_path: str
    options_json: str
    # engine.plan.FrozenPlan as JSON: the resolved plan, fixed when queued (None: the worker
    # resolves it from its own bemctl.toml, as bemctl < schema 0006 did)
    plan_json: str | None = None


def _event(session: Session, job_id: int, kind: str, message: str, run_id: int | None = None):
    session.add(Event(job_id=job_id, run_id=run_id, kind=kind, message=message))


# -- enqueue ------------------------------------------------------------------------------


def enqueue(
    store: Store, entries: Sequence[QueueEntry], *, priority: int = 0, max_attempts: int = 3
) -> tuple[str, list[Job]]:
    """One batch of jobs (one BH family), all or nothing; returns the batch id and jobs."""
    batch_id = uuid.uuid4().hex[:12]
    jobs = [
        Job(
            batch_id=batch_id,
            experiment_id=e.experiment_id,
            experiment_name=e.experiment_name,
            spec_path=e.spec_path,
            options_json=e.options_json,
            plan_json=e.plan_json,
            priority=priority,
            max_attempts=max_attempts,
        )
        for e in entries
    ]
    with store.session() as session:
        session.add(Batch(id=batch_id))
        session.flush()
        session.add_all(jobs)
        session.flush()
        for job in jobs:
            assert job.id is not None
            _event(session, job.id, "queued", f"queued in batch {batch_id}, priority {priority}")
    return batch_id, jobs


# -- claim and lease ----------------------------------------------------------------------


def claim_next(
    store: Store,
    worker: WorkerIdentity,
    lease_s: float,
    *,
    batch_id: str | None = None,
) -> Job | None:
    """Take the best queued job (highest priority, oldest), or None.

    Lapsed leases are requeued first, in the same transaction, so a job whose worker died
    is claimable by the very call that noticed.
    """
    with store.session() as session:
        now = utcnow()
        _requeue_lapsed(session, now)
        candidate = (
            select(Job.id)
            .where(Job.status == JobStatus.QUEUED, col(Job.cancel_requested).is_(False))
            .order_by(col(Job.priority).desc(), col(Job.id))
            .limit(1)
        )
        if batch_id is not None:
            candidate = candidate.where(Job.batch_id == batch_id)
        claimed = session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(col(Job.id) == candidate.scalar_subquery(), Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                worker_id=worker.id,
                worker_host=worker.host,
                worker_pid=worker.pid,
                started_at=now,
                heartbeat_at=now,
                lease_expires_at=now + timedelta(seconds=lease_s),
                phase="claimed",
                phase_step=None,
                phase_total=None,
                phase_detail=None,
                phase_started_at=now,
            )
            .returning(Job.id)
        ).first()
        if claimed is None:
            return None
        job = session.get(Job, claimed[0])
        assert job is not None and job.id is not None
        session.refresh(job)
        _event(session, job.id, "claimed", f"attempt {job.attempts} by worker {worker.id}")
        return job


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


def _requeue_lapsed(session: Session, now: datetime) -> list[int]:
    """Requeue (or fail, after max_attempts) running jobs whose worker is gone."""
    touched = []
    for job in session.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all():
        reason = _lapsed(job, now)
        if reason is None:
            continue
        assert job.id is not None
        _interrupt_runs(session, job.id, f"interrupted: {reason}")
        worker = job.worker_id
        job.worker_id = job.worker_host = job.worker_pid = None
        job.lease_expires_at = None
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, now
            job.error = f"cancelled; its worker stopped first ({reason})"
            _event(session, job.id, "cancelled", job.error)
        elif job.attempts >= job.max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, now
            job.error = f"attempt {job.attempts}/{job.max_attempts} interrupted: {reason}; gave up"
            _event(session, job.id, "failed", job.error)
        else:
            job.status = JobStatus.QUEUED
            job.phase = None
            job.error = f"attempt {job.attempts} interrupted: {reason}"
            _event(session, job.id, "requeued", f"{job.error} (worker {worker})")
        touched.append(job.id)
    return touched


def requeue_lapsed(store: Store) -> list[int]:
    """Requeue jobs whose worker is gone, now; returns their ids (claiming does this too)."""
    with store.session() as session:
        return _requeue_lapsed(session, utcnow())


def _interrupt_runs(
    session: Session, job_id: int, reason: str, status: RunStatus = RunStatus.INTERRUPTED
):
    now = utcnow()
    session.exec(  # type: ignore[call-overload]
        update(Run)
        .where(Run.job_id == job_id, col(Run.status).in_(ACTIVE_RUN_STATUSES))
        .values(status=status, error=reason, finished_at=now)
    )


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
        _event(session, job_id, "phase", phase, run_id)


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


def log_event(store: Store, job_id: int, kind: str, message: str, run_id: int | None = None):
    with store.session() as session:
        _event(session, job_id, kind, message, run_id)


# -- finishing ----------------------------------------------------------------------------


def finish_job(
    store: Store,
    job_id: int,
    worker_id: str,
    status: str,
    *,
    error: str | None = None,
    outcome_json: str | None = None,
) -> bool:
    """Close the job if this worker still holds it; False when it lost the lease."""
    if status not in TERMINAL_JOB_STATUSES:
        raise ValueError(f"not a terminal job status: {status!r}")
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.worker_id != worker_id or job.status != JobStatus.RUNNING:
            return False
        job.status, job.error, job.finished_at = status, error, utcnow()
        job.outcome_json = outcome_json
        job.phase = status
        job.lease_expires_at = None
        if status != JobStatus.SUCCEEDED:
            run_status = RunStatus.CANCELLED if status == JobStatus.CANCELLED else RunStatus.FAILED
            _interrupt_runs(session, job_id, error or status, run_status)
        _event(session, job_id, status, error or status)
        return True


def refuse_job(session: Session, job: Job, reason: str) -> None:
    """A finished job whose comparison the batch decision refuses (its arms differ in more
    than the variant): failed with the reason, no verdict; inside the decision's transaction."""
    assert job.id is not None
    job.status, job.error, job.phase = JobStatus.FAILED, reason, "failed"
    job.comparison_id = None
    _event(session, job.id, "refused", reason)


def release_job(store: Store, job_id: int, worker_id: str, reason: str) -> bool:
    """A stopping worker hands its job back: queued again, attempt not counted."""
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.worker_id != worker_id or job.status != JobStatus.RUNNING:
            return False
        _interrupt_runs(session, job_id, f"interrupted: {reason}")
        job.status, job.phase, job.error = JobStatus.QUEUED, None, f"released: {reason}"
        job.attempts -= 1
        job.worker_id = job.worker_host = job.worker_pid = None
        job.lease_expires_at = None
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        _event(session, job_id, "released", f"{reason}; back in the queue")
        return True


def cancel_jobs(store: Store, job_ids: Sequence[int], reason: str) -> dict[int, str]:
    """Queued jobs are cancelled now; running ones get the flag their worker polls.

    Returns job id -> what happened ("cancelled", "cancel requested", or the terminal
    status it already had).
    """
    effects: dict[int, str] = {}
    with store.session() as session:
        for job_id in job_ids:
            job = session.get(Job, job_id)
            if job is None:
                continue
            if job.status == JobStatus.QUEUED:
                job.status, job.finished_at, job.error = JobStatus.CANCELLED, utcnow(), reason
                job.cancel_requested = True
                _interrupt_runs(session, job_id, reason, RunStatus.CANCELLED)
                _event(session, job_id, "cancelled", reason)
                effects[job_id] = "cancelled"
            elif job.status == JobStatus.RUNNING:
                job.cancel_requested = True
                _event(session, job_id, "cancel_requested", reason)
                effects[job_id] = "cancel requested"
            else:
                effects[job_id] = f"already {job.status}"
    return effects


def retry_job(store: Store, job_id: int, *, priority: int | None = None) -> tuple[str, Job]:
    """A new job (in a new batch) for the same frozen experiment, options and plan: a retry
    is the same experiment, whatever the bemctl.toml of whoever retries it says."""
    with store.session() as session:
        old = session.get(Job, job_id)
        if old is None:
            raise LookupError(f"job {job_id} does not exist")
        entry = QueueEntry(
            old.experiment_id,
            old.experiment_name,
            old.spec_path,
            old.options_json,
            old.plan_json,
        )
        max_attempts = old.max_attempts
        priority = old.priority if priority is None else priority
    batch_id, [job] = enqueue(store, [entry], priority=priority, max_attempts=max_attempts)
    log_event(store, job_id, "retried", f"retried as job {job.id}")
    return batch_id, job


# -- batches ------------------------------------------------------------------------------


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
                _interrupt_runs(session, job.id, reason, RunStatus.CANCELLED)
                _event(session, job.id, "cancelled", reason)
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
