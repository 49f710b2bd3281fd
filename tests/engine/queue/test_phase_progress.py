"""A job's phase progress on its row: written at most every interval, the end always."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from engine.progress import NullProgress
from engine.queue.control import JobControl, JobProgress
from store import jobs, queries
from store.db import Store
from store.models import Job

PRETRAIN = "pre-train base model (cached after)"


class FakeClock:
    """Seconds as exact binary fractions, so interval arithmetic has no rounding."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "q.db") as opened:
        yield opened


def _claimed(store: Store) -> tuple[Job, jobs.WorkerIdentity]:
    e = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
    jobs.enqueue(store, [jobs.QueueEntry(e.id, "e", "e.yml", "{}")])
    worker = jobs.WorkerIdentity.here()
    job = jobs.claim_next(store, worker, 60)
    assert job is not None and job.id is not None
    return job, worker


def _row(store: Store, job_id: int) -> Job:
    row = jobs.get_job(store, job_id)
    assert row is not None
    return row


def _control(store: Store, job: Job, worker: jobs.WorkerIdentity, **kw) -> JobControl:
    assert job.id is not None
    return JobControl(store, job.id, worker.id, heartbeat_s=60, lease_s=120, **kw)


def test_steps_are_written_at_most_every_interval_and_the_last_always(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, worker = _claimed(store)
    assert job.id is not None
    written: list[int] = []
    real = jobs.set_phase_progress

    def counting(store, job_id, worker_id, step, detail):
        written.append(step)
        return real(store, job_id, worker_id, step, detail)

    monkeypatch.setattr(jobs, "set_phase_progress", counting)
    clock = FakeClock()
    control = _control(store, job, worker, clock=clock)
    try:
        phase = JobProgress(NullProgress(), control).phase(PRETRAIN, 2000)
        row = _row(store, job.id)
        assert (row.phase, row.phase_step, row.phase_total, row.phase_detail) == (
            PRETRAIN,
            0,
            2000,
            None,
        )
        assert row.phase_started_at is not None
        for step in range(1, 100):  # 8 steps a second for ~12 s
            clock.t += 0.125
            phase.advance(1, f"loss {5 - step / 100:.3f}")
        # a write every 0.5 s = every 4th step; never two within the interval
        assert written == list(range(4, 100, 4))
        row = _row(store, job.id)
        assert (row.phase_step, row.phase_detail) == (96, "loss 4.040")
        phase.done()
        row = _row(store, job.id)
        assert (row.phase_step, row.phase_total, row.phase_detail) == (99, 2000, "loss 4.010")
        assert written[-1] == 99
        phase.done()  # nothing new: no second write
        assert written.count(99) == 1
    finally:
        control.close()


def test_a_new_phase_starts_its_progress_over(store: Store) -> None:
    job, worker = _claimed(store)
    assert job.id is not None
    clock = FakeClock()
    control = _control(store, job, worker, clock=clock, progress_interval_s=0.0)
    try:
        progress = JobProgress(NullProgress(), control)
        first = progress.phase(PRETRAIN, 10)
        for _ in range(3):
            first.advance(1, "loss 1.000")
        first.done()
        assert _row(store, job.id).phase_step == 3
        second = progress.phase("e: evaluate baseline (seed 0)", 24)
        row = _row(store, job.id)
        assert (row.phase, row.phase_step, row.phase_total, row.phase_detail) == (
            "e: evaluate baseline (seed 0)",
            0,
            24,
            None,
        )
        second.advance(1)  # no info: no detail
        assert (_row(store, job.id).phase_step, _row(store, job.id).phase_detail) == (1, None)
        progress.phase("e: latency", 0)  # no step count
        row = _row(store, job.id)
        assert (row.phase_step, row.phase_total) == (None, None)
    finally:
        control.close()


def test_a_failed_write_is_reported_not_raised_and_retried_at_the_end(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, worker = _claimed(store)
    assert job.id is not None
    errors: list[str] = []
    real = jobs.set_phase_progress

    def locked(*args):
        raise OperationalError("UPDATE job", {}, Exception("database is locked"))

    control = _control(store, job, worker, on_error=errors.append, progress_interval_s=0.0)
    try:
        phase = JobProgress(NullProgress(), control).phase(PRETRAIN, 10)
        monkeypatch.setattr(jobs, "set_phase_progress", locked)
        phase.advance(1, "loss 3.000")  # the training step goes on
        assert len(errors) == 1 and "phase progress not recorded" in errors[0]
        assert "database is locked" in errors[0]
        monkeypatch.setattr(jobs, "set_phase_progress", real)
        phase.done()
        assert (_row(store, job.id).phase_step, _row(store, job.id).phase_detail) == (
            1,
            "loss 3.000",
        )
    finally:
        control.close()


def test_claiming_again_clears_the_previous_attempts_progress(store: Store) -> None:
    job, worker = _claimed(store)
    assert job.id is not None
    control = _control(store, job, worker, progress_interval_s=0.0)
    try:
        phase = JobProgress(NullProgress(), control).phase(PRETRAIN, 10)
        phase.advance(4, "loss 2.000")
    finally:
        control.close()
    assert jobs.release_job(store, job.id, worker.id, "stopping")
    again = jobs.claim_next(store, jobs.WorkerIdentity.here(), 60)
    assert again is not None and again.id == job.id
    row = _row(store, job.id)
    assert (row.phase, row.phase_step, row.phase_total, row.phase_detail) == (
        "claimed",
        None,
        None,
        None,
    )


def test_progress_of_a_job_not_held_is_not_written(store: Store) -> None:
    job, worker = _claimed(store)
    assert job.id is not None
    assert not jobs.set_phase_progress(store, job.id, "someone-else", 5, "loss 1.000")
    assert _row(store, job.id).phase_step is None
    assert jobs.set_phase_progress(store, job.id, worker.id, 5, "loss 1.000")
    assert _row(store, job.id).phase_step == 5
