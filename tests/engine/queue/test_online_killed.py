"""Fault test: a worker SIGKILLed in the middle of an OL stream; the retry resumes the stream
from its checkpoint: the deployed adapter is not retrained, and every live example is scored
exactly once in the compared runs (none twice, none skipped)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import select

from store import jobs
from store.db import Store
from store.errors import BemctlError
from store.models import ExampleScore, Job, Run, StepMetric
from store.stream import stream_points
from tests.engine.protocols.online.test_protocol import SIZE, write_tiny_ol
from tests.engine.queue.test_worker_killed import FAST_LEASES

LIVE = 10


def _worker(project: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bemctl", "worker", "--once"],
        cwd=project,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _points(db: Path) -> int:
    try:
        with Store(db, readonly=True) as store, store.read_session() as session:
            run = session.exec(select(Run).where(Run.role == "variant")).first()
            return len(stream_points(store, run.id)) if run else 0
    except BemctlError:
        return 0


def test_sigkill_mid_stream_resumes_from_the_checkpoint(project: Path, cli) -> None:
    with (project / "bemctl.toml").open("a") as fh:
        fh.write(FAST_LEASES)
    name = write_tiny_ol(project, quick_live_batches=LIVE)
    assert cli("queue", name, "--quick").code == 0
    db = project / ".bemctl" / "bemctl.db"

    first = _worker(project)
    deadline = time.monotonic() + 180
    try:
        while (seen := _points(db)) < 3:
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the stream never started"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert seen < LIVE  # killed mid-stream

    second = _worker(project)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out

    with Store(db, readonly=True) as store, store.read_session() as session:
        [job] = session.exec(select(Job)).all()
        assert (job.status, job.attempts) == ("succeeded", 2)
        runs = {(r.role, r.attempt): r for r in session.exec(select(Run)).all()}
        resumed = [e for e in jobs.job_events(store, job.id) if e.kind == "resume"]
        assert len(resumed) == 1, [e.message for e in jobs.job_events(store, job.id)]
        at = int(re.search(r"resumed the stream at live batch (\d+)", resumed[0].message)[1])
        old_points = stream_points(store, runs["variant", 1].id)
        print(f"killed after {seen} stored batches; resumed at live batch {at}")
        assert seen <= at <= len(old_points) + 1
        # the retry's runs: the deployed adapter restored (no training steps), the stream whole
        baseline, variant = runs["baseline", 2], runs["variant", 2]
        assert baseline.adapter_source_run_id == runs["baseline", 1].id
        assert not session.exec(select(StepMetric).where(StepMetric.run_id == baseline.id)).all()
        assert [p.batch for p in stream_points(store, variant.id)] == list(range(LIVE))
        # the points the first attempt stored are the retry's, unchanged
        assert stream_points(store, variant.id)[: len(old_points)] == old_points
        for run in (baseline, variant):
            ids = [
                s.example_id
                for s in session.exec(
                    select(ExampleScore).where(
                        ExampleScore.run_id == run.id, ExampleScore.metric == "exact_match"
                    )
                ).all()
            ]
            assert len(ids) == len(set(ids)) == LIVE * SIZE + 24
