"""The queue protocol in one process: claims, leases, requeue/fail, cancel, release, batches."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from store import jobs, queries
from store.db import Store
from store.models import Batch, Job, Run
from store.types import utcnow


def _enqueue(store: Store, n: int = 1, *, priority: int = 0, max_attempts: int = 3):
    experiment = queries.get_or_create_experiment(store, "exp", "{}", "h", "exp.yml")
    assert experiment.id is not None
    entries = [jobs.QueueEntry(experiment.id, "exp", "exp.yml", "{}") for _ in range(n)]
    return jobs.enqueue(store, entries, priority=priority, max_attempts=max_attempts)


def _worker(host: str = "elsewhere", pid: int = 1) -> jobs.WorkerIdentity:
    """A worker on another host: only its lease, not its pid, can tell it is gone."""
    return jobs.WorkerIdentity(f"{host}:{pid}:x", host, pid)


def _expire(store: Store, job_id: int, *, heartbeat_age_s: float = 60) -> None:
    now = utcnow()
    with store.session() as session:
        session.exec(
            update(Job)
            .where(Job.id == job_id)
            .values(
                lease_expires_at=now - timedelta(seconds=1),
                heartbeat_at=now - timedelta(seconds=heartbeat_age_s),
            )
        )


def _run_for(store: Store, job: Job, role: str = "baseline") -> Run:
    return queries.create_run(
        store,
        experiment_id=job.experiment_id,
        invocation_id=job.batch_id,
        role=role,
        seed=0,
        quick=True,
        device="cpu",
        total_steps=5,
        job_id=job.id,
        attempt=job.attempts,
    )


def test_claim_order_is_priority_then_age(store: Store) -> None:
    _, low = _enqueue(store, 2)
    _, [high] = _enqueue(store, 1, priority=5)
    w = jobs.WorkerIdentity.here()
    order = [jobs.claim_next(store, w, 30).id for _ in range(3)]
    assert order == [high.id, low[0].id, low[1].id]
    assert jobs.claim_next(store, w, 30) is None


def test_claimed_job_records_worker_lease_and_attempt(store: Store) -> None:
    _, [job] = _enqueue(store)
    w = jobs.WorkerIdentity.here()
    claimed = jobs.claim_next(store, w, 30)
    assert claimed is not None and claimed.id == job.id
    assert (claimed.status, claimed.attempts, claimed.worker_id) == ("running", 1, w.id)
    assert claimed.lease_expires_at > utcnow() + timedelta(seconds=25)
    assert [e.kind for e in jobs.job_events(store, job.id)] == ["queued", "claimed"]


def test_threads_racing_for_jobs_never_share_one(store_path) -> None:
    """Eight claimers (own connections) on 30 jobs: every job claimed exactly once."""
    with Store(store_path) as store:
        _enqueue(store, 30)
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer() -> None:
        with Store(store_path, busy_timeout_s=10) as own:
            w = jobs.WorkerIdentity.here()
            while (job := jobs.claim_next(own, w, 30)) is not None:
                with lock:
                    claimed.append(job.id)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(1, 31))


def test_lapsed_lease_requeues_then_fails_after_max_attempts(store: Store) -> None:
    _, [job] = _enqueue(store, max_attempts=2)
    first = jobs.claim_next(store, _worker(), 30)
    run = _run_for(store, first)
    queries.mark_run_running(store, run.id)
    _expire(store, job.id)

    second = jobs.claim_next(store, _worker(pid=2), 30)  # requeued and taken by the same call
    assert second is not None and second.id == job.id and second.attempts == 2
    assert "attempt 1 interrupted: lease lapsed" in second.error
    assert queries.get_run(store, run.id).status == "interrupted"

    _expire(store, job.id)
    assert jobs.requeue_lapsed(store) == [job.id]
    final = jobs.get_job(store, job.id)
    assert final.status == "failed"
    assert "attempt 2/2 interrupted: lease lapsed" in final.error and "gave up" in final.error
    kinds = [e.kind for e in jobs.job_events(store, job.id)]
    assert kinds == ["queued", "claimed", "requeued", "claimed", "failed"]


def test_live_lease_is_not_taken(store: Store) -> None:
    _enqueue(store)
    jobs.claim_next(store, _worker(), 30)
    assert jobs.claim_next(store, _worker(pid=2), 30) is None
    assert jobs.requeue_lapsed(store) == []


def test_dead_worker_on_this_host_is_noticed_before_its_lease_lapses(store: Store) -> None:
    import socket
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that existed and is gone
    _, [job] = _enqueue(store)
    jobs.claim_next(store, jobs.WorkerIdentity("dead", socket.gethostname(), proc.pid), 3600)
    taken = jobs.claim_next(store, jobs.WorkerIdentity.here(), 30)
    assert taken is not None and taken.id == job.id
    assert f"worker process {proc.pid} is gone" in taken.error


def test_heartbeat_renews_and_reports_cancel(store: Store) -> None:
    _, [job] = _enqueue(store)
    w = _worker()
    jobs.claim_next(store, w, 1)
    before = jobs.get_job(store, job.id).lease_expires_at
    assert jobs.heartbeat(store, job.id, w.id, 60) is False
    assert jobs.get_job(store, job.id).lease_expires_at > before
    assert jobs.cancel_jobs(store, [job.id], "stop") == {job.id: "cancel requested"}
    assert jobs.heartbeat(store, job.id, w.id, 60) is True
    with pytest.raises(jobs.LeaseLost):
        jobs.heartbeat(store, job.id, "someone-else", 60)


def test_cancel_queued_job_is_immediate(store: Store) -> None:
    _, [job] = _enqueue(store)
    assert jobs.cancel_jobs(store, [job.id], "no longer needed") == {job.id: "cancelled"}
    assert jobs.get_job(store, job.id).status == "cancelled"
    assert jobs.claim_next(store, _worker(), 30) is None
    assert jobs.cancel_jobs(store, [job.id], "again") == {job.id: "already cancelled"}


def test_finish_only_by_the_holder(store: Store) -> None:
    _, [job] = _enqueue(store)
    w = _worker()
    jobs.claim_next(store, w, 30)
    run = _run_for(store, jobs.get_job(store, job.id))
    assert not jobs.finish_job(store, job.id, "intruder", "succeeded")
    assert jobs.finish_job(store, job.id, w.id, "failed", error="boom")
    assert jobs.get_job(store, job.id).status == "failed"
    assert queries.get_run(store, run.id).status == "failed"  # closed with the job's reason
    assert queries.get_run(store, run.id).error == "boom"


def test_release_puts_the_job_back_without_spending_an_attempt(store: Store) -> None:
    _, [job] = _enqueue(store)
    w = _worker()
    jobs.claim_next(store, w, 30)
    assert jobs.release_job(store, job.id, w.id, "worker stopped")
    back = jobs.get_job(store, job.id)
    assert (back.status, back.attempts, back.worker_id) == ("queued", 0, None)


def test_pending_work_counts_a_quiet_lease_but_not_a_live_one(store: Store) -> None:
    _, [job] = _enqueue(store)
    assert jobs.pending_work(store, heartbeat_s=1) == f"job {job.id} is queued"
    jobs.claim_next(store, _worker(), 30)
    assert jobs.pending_work(store, heartbeat_s=1) is None  # held and beating
    with store.session() as session:  # silent for 10 s, lease not yet lapsed
        session.exec(
            update(Job)
            .where(Job.id == job.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=10))
        )
    assert "silent" in jobs.pending_work(store, heartbeat_s=1)


def test_close_batch_waits_for_every_job_and_writes_once(store: Store) -> None:
    batch_id, batch_jobs = _enqueue(store, 2)
    w = _worker()
    calls: list[list[int]] = []

    def write(session, succeeded):
        calls.append([j.id for j in succeeded])

    for _ in batch_jobs:
        jobs.claim_next(store, w, 30)
    jobs.finish_job(store, batch_jobs[0].id, w.id, "succeeded", outcome_json="{}")
    assert not jobs.close_batch(store, batch_id, write)  # one job still running
    assert jobs.ready_batches(store) == []
    jobs.finish_job(store, batch_jobs[1].id, w.id, "failed", error="x")
    assert jobs.ready_batches(store) == [batch_id]
    assert jobs.close_batch(store, batch_id, write)
    assert not jobs.close_batch(store, batch_id, write)  # a racing second worker
    assert calls == [[batch_jobs[0].id]]
    with store.read_session() as session:
        assert session.get(Batch, batch_id).status == "decided"


def test_abandon_batch_cancels_everything_left(store: Store) -> None:
    batch_id, batch_jobs = _enqueue(store, 2)
    jobs.claim_next(store, _worker(), 30)
    jobs.abandon_batch(store, batch_id, "interrupted by user (Ctrl-C)")
    with store.read_session() as session:
        statuses = [j.status for j in session.exec(select(Job)).all()]
        assert statuses == ["cancelled", "cancelled"]
        assert session.get(Batch, batch_id).status == "abandoned"


def test_retry_makes_a_new_job_with_the_same_frozen_inputs(store: Store) -> None:
    _, [job] = _enqueue(store, priority=3)
    jobs.cancel_jobs(store, [job.id], "x")
    batch_id, new = jobs.retry_job(store, job.id)
    assert new.id != job.id and new.batch_id == batch_id != job.batch_id
    assert (new.experiment_id, new.options_json, new.priority) == (
        job.experiment_id,
        job.options_json,
        3,
    )
    assert jobs.job_events(store, job.id)[-1].message == f"retried as job {new.id}"


def test_enqueue_stores_the_frozen_plan_and_retry_copies_it(store: Store) -> None:
    experiment = queries.get_or_create_experiment(store, "exp", "{}", "h", "exp.yml")
    assert experiment.id is not None
    plan = '{"format": 1, "experiment": {"steps": 100}, "pretrain": null}'
    entry = jobs.QueueEntry(experiment.id, "exp", "exp.yml", "{}", plan)
    _, [job] = jobs.enqueue(store, [entry])
    assert jobs.get_job(store, job.id).plan_json == plan
    jobs.cancel_jobs(store, [job.id], "x")
    _, new = jobs.retry_job(store, job.id)
    assert jobs.get_job(store, new.id).plan_json == plan  # the retry is the same experiment
    _, [old_style] = _enqueue(store)  # an entry without a plan (the worker resolves one)
    assert old_style.plan_json is None


def test_refuse_job_fails_it_with_the_reason_and_an_event(store: Store) -> None:
    _, [job] = _enqueue(store)
    with store.session() as session:
        row = session.get(Job, job.id)
        row.status, row.comparison_id = "succeeded", 5
        jobs.refuse_job(session, row, "exp: refused, the arms differ in steps (6 vs 8)")
    refused = jobs.get_job(store, job.id)
    assert (refused.status, refused.comparison_id) == ("failed", None)
    assert refused.error == "exp: refused, the arms differ in steps (6 vs 8)"
    assert jobs.job_events(store, job.id)[-1].kind == "refused"


def test_a_reused_pid_does_not_keep_a_dead_workers_lease(store: Store) -> None:
    """The pid exists, but its process started after the claim: the OS reused it."""
    import os
    import socket

    _, [job] = _enqueue(store)
    jobs.claim_next(store, jobs.WorkerIdentity("old", socket.gethostname(), os.getpid()), 3600)
    with store.session() as session:  # claimed long before this process started
        session.exec(
            update(Job).where(Job.id == job.id).values(started_at=utcnow() - timedelta(days=3650))
        )
    taken = jobs.claim_next(store, _worker(), 30)
    assert taken is not None and f"worker process {os.getpid()} is gone" in taken.error
