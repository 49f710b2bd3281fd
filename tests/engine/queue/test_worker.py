"""The worker loop in-process: --once semantics, cancels reaching a training loop."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlmodel import select

from engine.queue.control import StepWriter
from engine.queue.worker import Worker
from engine.settings import Settings, load_settings
from store import jobs, queries
from store.db import Store
from store.models import Comparison, Job, Run
from store.types import utcnow


def _settings(db: Path) -> Settings:
    return Settings(
        store=db, worker={"heartbeat_s": 0.1, "lease_s": 1.0, "poll_s": 0.05, "max_attempts": 3}
    )


def _ran(log: list[int]):
    def work(settings, store, job, control, progress):
        control.phase("working")
        log.append(job.id)
        return None

    return work


def test_once_exits_when_nothing_is_left(tmp_path: Path) -> None:
    with Store(tmp_path / "q.db") as store:
        e = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
        _, queued = jobs.enqueue(store, [jobs.QueueEntry(e.id, "e", "e.yml", "{}")] * 3)
        log: list[int] = []
        worker = Worker(_settings(tmp_path / "q.db"), store, job_runner=_ran(log))
        assert worker.run(once=True) == 3
        assert log == [j.id for j in queued]
        assert worker.run(once=True) == 0


def test_max_jobs_stops_early(tmp_path: Path) -> None:
    with Store(tmp_path / "q.db") as store:
        e = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
        jobs.enqueue(store, [jobs.QueueEntry(e.id, "e", "e.yml", "{}")] * 3)
        log: list[int] = []
        Worker(_settings(tmp_path / "q.db"), store, job_runner=_ran(log)).run(max_jobs=2)
        assert len(log) == 2


def test_once_waits_out_a_lapsing_lease_and_takes_the_job(tmp_path: Path) -> None:
    with Store(tmp_path / "q.db") as store:
        e = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
        _, [job] = jobs.enqueue(store, [jobs.QueueEntry(e.id, "e", "e.yml", "{}")])
        # held by a worker on another host that went quiet 10 s ago; lease ends in 1 s
        jobs.claim_next(store, jobs.WorkerIdentity("far:1:x", "far", 1), 30)
        now = utcnow()
        with store.session() as session:
            session.exec(
                update(Job)
                .where(Job.id == job.id)
                .values(
                    heartbeat_at=now - timedelta(seconds=10),
                    lease_expires_at=now + timedelta(seconds=1),
                )
            )
        log: list[int] = []
        said: list[str] = []
        started = time.monotonic()
        worker = Worker(_settings(tmp_path / "q.db"), store, job_runner=_ran(log), say=said.append)
        assert worker.run(once=True) == 1
        assert log == [job.id] and time.monotonic() - started >= 0.9
        assert any("silent" in line for line in said)
        assert jobs.get_job(store, job.id).attempts == 2


def test_a_healthy_workers_job_is_not_work_left(tmp_path: Path) -> None:
    with Store(tmp_path / "q.db") as store:
        e = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
        jobs.enqueue(store, [jobs.QueueEntry(e.id, "e", "e.yml", "{}")])
        # held by this (alive) process under another worker identity, lease fresh
        jobs.claim_next(store, jobs.WorkerIdentity.here(), 30)
        assert Worker(_settings(tmp_path / "q.db"), store, job_runner=_ran([])).run(once=True) == 0


def test_cancel_stops_training_between_steps(project: Path, cli, monkeypatch) -> None:
    """`bemctl cancel` while training: the job ends cancelled long before its last step."""
    with (project / "bemctl.toml").open("a") as fh:
        fh.write("\n[worker]\nheartbeat_s = 0.05\nlease_s = 5.0\npoll_s = 0.05\n")
    monkeypatch.setenv("BEMCTL_QUICK__TRAIN_STEPS", "400")
    assert cli("queue", "v1_dynrank", "--quick").code == 0
    real_add = StepWriter.add

    def cancel_at_step_3(self, step, *args, **kwargs):
        if step == 3:
            assert cli("cancel", "v1_dynrank").code == 0
        return real_add(self, step, *args, **kwargs)

    monkeypatch.setattr(StepWriter, "add", cancel_at_step_3)
    settings = load_settings()
    with Store(settings.store_path) as store:
        Worker(settings, store).run(once=True)
    with Store(settings.store_path, readonly=True) as store, store.read_session() as session:
        [job] = session.exec(select(Job)).all()
        assert (job.status, job.error) == ("cancelled", "cancelled by user")
        runs = session.exec(select(Run)).all()
        assert {r.status for r in runs} == {"cancelled"}
        baseline = next(r for r in runs if r.role == "baseline")
        assert 3 <= baseline.current_step < 50  # stopped within a few steps of the cancel
        assert session.exec(select(Comparison)).all() == []
        kinds = [e.kind for e in jobs.job_events(store, job.id)]
        assert "cancel_requested" in kinds and kinds[-1] == "cancelled"


def test_worker_identity_names_host_and_pid() -> None:
    w = jobs.WorkerIdentity.here()
    assert w.host == socket.gethostname() and str(w.pid) in w.id
