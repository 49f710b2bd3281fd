"""Fault test: a real worker SIGKILLed in mid-training; a second worker finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from store import jobs, queries
from store.db import Store
from store.errors import BemctlError
from store.models import Comparison, ExampleScore, Job, Run

FAST_LEASES = "\n[worker]\nheartbeat_s = 0.2\nlease_s = 3.0\npoll_s = 0.1\nmax_attempts = 3\n"


def _worker(project: Path) -> subprocess.Popen:
    env = {**os.environ, "BEMCTL_QUICK__TRAIN_STEPS": "150", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bemctl", "worker", "--once"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _variant_step(db: Path) -> int:
    try:
        with Store(db, readonly=True) as store, store.read_session() as session:
            run = session.exec(select(Run).where(Run.role == "variant")).first()
            return run.current_step if run else 0
    except BemctlError:
        return 0


def test_sigkill_mid_training_loses_nothing(project: Path, cli) -> None:
    with (project / "bemctl.toml").open("a") as fh:
        fh.write(FAST_LEASES)
    assert cli("queue", "v1_dynrank", "--quick").code == 0
    db = project / ".bemctl" / "bemctl.db"

    first = _worker(project)
    deadline = time.monotonic() + 180
    try:  # kill it while the variant trains: the baseline is finished and must be kept
        while _variant_step(db) < 5:
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "variant training never started"
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    second = _worker(project)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out

    with Store(db, readonly=True) as store, store.read_session() as session:
        assert jobs.integrity_ok(store)
        [job] = session.exec(select(Job)).all()
        assert (job.status, job.attempts) == ("succeeded", 2)
        runs = {(r.role, r.attempt): r for r in session.exec(select(Run)).all()}
        # attempt 1: baseline finished (kept), variant cut off; attempt 2 trained the variant
        assert runs["baseline", 1].status == "succeeded"
        assert runs["variant", 1].status == "interrupted"
        assert runs["variant", 2].status == "succeeded"
        assert ("baseline", 2) not in runs
        [comparison] = session.exec(select(Comparison)).all()
        assert comparison.baseline_run_id == runs["baseline", 1].id
        assert comparison.variant_run_id == runs["variant", 2].id
        # every eval example scored once per metric per compared run; nothing duplicated
        for run_id in (comparison.baseline_run_id, comparison.variant_run_id):
            counts = session.exec(
                select(
                    ExampleScore.metric,
                    func.count(),
                    func.count(ExampleScore.example_id.distinct()),
                )
                .where(ExampleScore.run_id == run_id)
                .group_by(ExampleScore.metric)
            ).all()
            assert {(m, n, d) for m, n, d in counts} == {("exact_match", 24, 24), ("f1", 24, 24)}
        interrupted = runs["variant", 1].id
        assert queries.example_scores(store, interrupted) == {}
        events = jobs.job_events(store, job.id)
        assert [e.kind for e in events].count("claimed") == 2
        [requeued] = [e for e in events if e.kind == "requeued"]
        assert f"worker process {first.pid} is gone" in requeued.message
