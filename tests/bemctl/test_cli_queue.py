"""`bemctl queue`, `worker`, `cancel`, `retry`, `list` from the command line."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from store.db import Store
from store.models import Job, Run


def _db(project: Path) -> Path:
    return project / ".bemctl" / "bemctl.db"


def test_queue_then_worker_then_report(project: Path, cli) -> None:
    queued = cli("queue", "v1_dynrank", "--quick", "--priority", "2")
    assert queued.code == 0, queued.err
    assert "queued job 1: v1_dynrank" in queued.out
    listing = cli("list")
    assert "queued" in listing.out and "v1_dynrank" in listing.out
    worked = cli("worker", "--once")
    assert worked.code == 0, worked.err
    assert "job 1: succeeded" in worked.err and "worker done: 1 job(s)" in worked.err
    report = cli("report", "v1_dynrank")
    assert report.code == 0 and "v1_dynrank" in report.out
    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        [job] = session.exec(select(Job)).all()
        assert (job.status, job.priority, job.comparison_id) == ("succeeded", 2, 1)
        assert {r.job_id for r in session.exec(select(Run)).all()} == {job.id}


def test_cancel_queued_experiment_and_retry_is_refused_without_runs(project: Path, cli) -> None:
    assert cli("queue", "v1_dynrank", "--quick").code == 0
    cancelled = cli("cancel", "v1_dynrank")
    assert cancelled.code == 0 and "job 1 (v1_dynrank): cancelled" in cancelled.out
    again = cli("cancel", "v1_dynrank")
    assert again.code == 1 and "no queued or running jobs" in again.err
    assert cli("worker", "--once").code == 0  # nothing to do
    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        assert [j.status for j in session.exec(select(Job)).all()] == ["cancelled"]


def test_retry_a_failed_run_queues_a_new_job(project: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("BEMCTL_QUICK__TRAIN_STEPS", "3")
    assert cli("run", "v1_dynrank", "--quick").code == 0
    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        run_id = session.exec(select(Run)).first().id
    retried = cli("retry", str(run_id))
    assert retried.code == 0, retried.err
    assert "queued job 2: v1_dynrank" in retried.out and "retry of job 1" in retried.out
    running = cli("retry", "999")
    assert running.code == 2 and "run 999" in running.err


def test_unknown_run_and_experiment_are_one_line_errors(project: Path, cli) -> None:
    assert cli("queue", "nope").code == 2
    result = cli("cancel", "12")
    assert result.code == 2 and result.err.count("\n") == 1 and "run 12" in result.err
