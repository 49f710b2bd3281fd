"""Crash safety: an interrupted or diverged run leaves the store consistent and says why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import select

from engine.queue.control import StepWriter
from store import queries
from store.db import Store
from store.errors import BemctlError
from store.models import Comparison, GateDecision, Run, StatResult


def _db(project: Path) -> Path:
    return project / ".bemctl" / "bemctl.db"


def test_ctrl_c_mid_training_leaves_no_partial_verdict(project: Path, cli, monkeypatch) -> None:
    real_add = StepWriter.add

    def interrupt_at_step_3(self, step, *args, **kwargs):
        if step == 3:
            raise KeyboardInterrupt
        return real_add(self, step, *args, **kwargs)

    monkeypatch.setattr(StepWriter, "add", interrupt_at_step_3)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 130
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("interrupted: batch ") and last.endswith("; no verdicts written")
    assert "back in the queue" not in result.err  # `run` cancels; only `worker` hands back

    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        runs = session.exec(select(Run)).all()
        assert {r.role: r.status for r in runs} == {"baseline": "cancelled", "variant": "cancelled"}
        assert all("Ctrl-C" in (r.error or "") for r in runs)
        assert all(r.finished_at is not None for r in runs)
        baseline = next(r for r in runs if r.role == "baseline")
        assert [m.step for m in queries.step_metrics(store, baseline.id)] == [1, 2]
        assert session.exec(select(Comparison)).all() == []
        assert session.exec(select(StatResult)).all() == []
        assert session.exec(select(GateDecision)).all() == []

    monkeypatch.setattr(StepWriter, "add", real_add)
    again = cli("run", "v1_dynrank", "--quick")
    assert again.code == 0, again.err
    with Store(_db(project), readonly=True) as store:
        assert len(queries.latest_comparisons(store)) == 1


def test_nan_loss_fails_the_run_with_its_reason(project: Path, cli, monkeypatch) -> None:
    import torch

    from engine import training

    real_ce = torch.nn.functional.cross_entropy
    real_train = training.train_adapter
    calls = {"n": 0, "adapter_training": False}

    def nan_on_second_adapter_step(*args, **kwargs):
        loss = real_ce(*args, **kwargs)
        if calls["adapter_training"]:  # leave base-model pre-training alone
            calls["n"] += 1
            if calls["n"] == 2:
                return loss * float("nan")
        return loss

    def flagged_train(*args, **kwargs):
        calls["adapter_training"] = True
        try:
            return real_train(*args, **kwargs)
        finally:
            calls["adapter_training"] = False

    monkeypatch.setattr(training.nn.functional, "cross_entropy", nan_on_second_adapter_step)
    monkeypatch.setattr("engine.runner.train_adapter", flagged_train)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 1
    assert "non-finite loss" in result.err and "Traceback" not in result.err
    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        runs = {r.role: r for r in session.exec(select(Run)).all()}
        assert runs["baseline"].status == "failed"
        assert "non-finite loss" in runs["baseline"].error
        assert runs["variant"].status == "failed"  # never started: closed with the reason
        assert session.exec(select(Comparison)).all() == []


def test_sigint_to_a_real_process(project: Path) -> None:
    """A real Ctrl-C (SIGINT) during training: exit 130, runs cancelled, no comparison."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bemctl", "run", "v1_dynrank", "--quick"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (`cmd &` without job control) inherits SIGINT
        # ignored, and so would this child: its Ctrl-C would never arrive
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    db = _db(project)
    try:
        while time.monotonic() < deadline:  # wait until training has written a step
            time.sleep(0.2)
            if db.exists():
                try:
                    with Store(db, readonly=True) as store:
                        runs = queries.list_runs(store)
                except BemctlError:  # created but its schema not written yet
                    continue
                if any(r.current_step >= 1 for r in runs):
                    break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("cancelled); no verdicts written")
    with Store(db, readonly=True) as store, store.read_session() as session:
        statuses = {r.status for r in session.exec(select(Run)).all()}
        assert statuses <= {"cancelled", "succeeded"} and "cancelled" in statuses
        assert session.exec(select(Comparison)).all() == []
