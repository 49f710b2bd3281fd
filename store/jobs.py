"""The work queue in SQLite: enqueue, claim under a lease, finish, release, cancel, retry.

Several worker processes share one database file, so every state change is a single
`BEGIN IMMEDIATE` transaction whose UPDATE re-checks the state it expects (status, owner)
in its WHERE clause and reports through RETURNING whether it won. Two workers can race
for a job; only one UPDATE matches.

The rest of the queue lives beside this module, one job each: leases, heartbeats and
lapsed workers (`store.leases`), a running job's phase reports (`store.progress`), the
event log (`store.job_log`), batches (`store.batches`) and the reads (`store.job_reads`).
This module re-exports their public names, so `from store import jobs; jobs.<name>` stays
the one way the CLI, the worker and the console reach the queue (and the one place a test
patches, e.g. `jobs.set_phase_progress`, for the worker's calls to see it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from store.batches import abandon_batch, batch_state, close_batch, pending_work, ready_batches
from store.db import Store
from store.job_log import add_event, interrupt_runs, log_event
from store.job_reads import (
    active_jobs_named,
    get_job,
    integrity_ok,
    job_events,
    job_for_run,
    list_jobs,
)
from store.leases import LeaseLost, WorkerIdentity, heartbeat, requeue_lapsed, requeue_lapsed_in
from store.models import Batch, Job
from store.progress import set_phase, set_phase_progress
from store.states import TERMINAL_JOB_STATUSES, JobStatus, RunStatus
from store.types import utcnow

__all__ = [
    # defined here
    "QueueEntry",
    "cancel_jobs",
    "claim_next",
    "enqueue",
    "finish_job",
    "refuse_job",
    "release_job",
    "retry_job",
    # re-exported: the rest of the queue, reached as jobs.<name>
    "LeaseLost",
    "WorkerIdentity",
    "abandon_batch",
    "active_jobs_named",
    "batch_state",
    "close_batch",
    "get_job",
    "heartbeat",
    "integrity_ok",
    "job_events",
    "job_for_run",
    "list_jobs",
    "log_event",
    "pending_work",
    "ready_batches",
    "requeue_lapsed",
    "set_phase",
    "set_phase_progress",
]


@dataclass(frozen=True)
class QueueEntry:
    experiment_id: int
    experiment_name: str
    spec_path: str
    options_json: str
    # engine.plan.FrozenPlan as JSON: the resolved plan, fixed when queued (None: the worker
    # resolves it from its own bemctl.toml, as bemctl < schema 0006 did)
    plan_json: str | None = None


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
            add_event(session, job.id, "queued", f"queued in batch {batch_id}, priority {priority}")
    return batch_id, jobs


# -- claim --------------------------------------------------------------------------------


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
        requeue_lapsed_in(session, now)
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
        add_event(session, job.id, "claimed", f"attempt {job.attempts} by worker {worker.id}")
        return job


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
            interrupt_runs(session, job_id, error or status, run_status)
        add_event(session, job_id, status, error or status)
        return True


def refuse_job(session: Session, job: Job, reason: str) -> None:
    """A finished job whose comparison the batch decision refuses (its arms differ in more
    than the variant): failed with the reason, no verdict; inside the decision's transaction."""
    assert job.id is not None
    job.status, job.error, job.phase = JobStatus.FAILED, reason, "failed"
    job.comparison_id = None
    add_event(session, job.id, "refused", reason)


def release_job(store: Store, job_id: int, worker_id: str, reason: str) -> bool:
    """A stopping worker hands its job back: queued again, attempt not counted."""
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.worker_id != worker_id or job.status != JobStatus.RUNNING:
            return False
        interrupt_runs(session, job_id, f"interrupted: {reason}")
        job.status, job.phase, job.error = JobStatus.QUEUED, None, f"released: {reason}"
        job.attempts -= 1
        job.worker_id = job.worker_host = job.worker_pid = None
        job.lease_expires_at = None
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        add_event(session, job_id, "released", f"{reason}; back in the queue")
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
                interrupt_runs(session, job_id, reason, RunStatus.CANCELLED)
                add_event(session, job_id, "cancelled", reason)
                effects[job_id] = "cancelled"
            elif job.status == JobStatus.RUNNING:
                job.cancel_requested = True
                add_event(session, job_id, "cancel_requested", reason)
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
