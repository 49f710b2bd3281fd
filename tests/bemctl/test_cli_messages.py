"""Messages that say one true thing: how `worker` and `run` stop, and `retry` by job id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from engine.queue.control import StepWriter
from engine.queue.worker import Worker
from store.db import Store
from store.models import Event, Job, Run


def _db(project: Path) -> Path:
    return project / ".bemctl" / "bemctl.db"


def _jobs(project: Path) -> list[Job]:
    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        return list(session.exec(select(Job).order_by(Job.id)).all())


# -- stopping -------------------------------------------------------------------------------


def test_worker_ctrl_c_hands_its_job_back_and_says_so(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("queue", "v1_dynrank", "--quick").code == 0
    real_add = StepWriter.add

    def interrupt_at_step_2(self, step, *args, **kwargs):
        if step == 2:
            raise KeyboardInterrupt
        return real_add(self, step, *args, **kwargs)

    monkeypatch.setattr(StepWriter, "add", interrupt_at_step_2)
    before = signal.getsignal(signal.SIGTERM)
    result = cli("worker", "--once")
    assert signal.getsignal(signal.SIGTERM) == before  # the command restores its handler
    assert result.code == 130
    last = result.err.strip().splitlines()[-1]
    assert (
        last
        == "worker stopped: job 1 (v1_dynrank) is back in the queue (the next worker resumes it)"
    )
    assert "cancelled" not in result.err
    [job] = _jobs(project)
    assert (job.status, job.attempts, job.worker_id) == ("queued", 0, None)
    with Store(_db(project), readonly=True) as store, store.read_session() as session:
        kinds = [e.kind for e in session.exec(select(Event).order_by(Event.id)).all()]
        runs = session.exec(select(Run)).all()
    assert kinds[-1] == "released"
    assert {r.status for r in runs} == {"interrupted"}


def test_idle_worker_ctrl_c_says_it_held_nothing(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self, *, once=False, max_jobs=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Worker, "run", interrupted)
    result = cli("worker")
    assert result.code == 130
    assert result.err.strip().splitlines()[-1] == "worker stopped; it held no job"
    assert "cancelled" not in result.err and "back in the queue" not in result.err


def test_sigterm_to_an_idle_worker_in_process(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGTERM to this process while the worker polls: the same words as Ctrl-C."""

    def sigterm_self(self, *, once=False, max_jobs=None):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler interrupts this

    monkeypatch.setattr(Worker, "run", sigterm_self)
    before = signal.getsignal(signal.SIGTERM)
    result = cli("worker")
    assert signal.getsignal(signal.SIGTERM) == before
    assert result.code == 130
    assert result.err.strip().splitlines()[-1] == "worker stopped; it held no job"


def test_a_stop_landing_in_error_handling_still_exits_130(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal can land anywhere, also while a failure is being reported: exit 130 then,
    never Python's own exit by SIGINT (-2) with a traceback."""
    import bemctl.exit_handling

    def failing(self, *, once=False, max_jobs=None):
        raise bemctl.exit_handling.BemctlError("the store went away")

    real_say = bemctl.exit_handling.say
    calls: list[str] = []

    def say_then_stop(text: str) -> None:
        calls.append(text)
        real_say(text)
        if text.startswith("error:"):
            raise KeyboardInterrupt  # a SIGTERM right after the error line

    monkeypatch.setattr(Worker, "run", failing)
    monkeypatch.setattr(bemctl.exit_handling, "say", say_then_stop)
    result = cli("worker")
    assert result.code == 130
    assert calls[-2:] == ["error: the store went away", "interrupted"]


def test_run_ctrl_c_cancels_its_batch_and_says_so(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Worker, "drain_batch", interrupted)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 130
    [job] = _jobs(project)
    assert result.err.strip().splitlines()[-1] == (
        f"interrupted: batch {job.batch_id} cancelled (its unfinished runs are marked "
        "cancelled); no verdicts written"
    )
    assert "back in the queue" not in result.err
    assert job.status == "cancelled"


def test_sigterm_to_a_real_worker_process(project: Path, tmp_path: Path) -> None:
    """What the console's stop key sends: exit 130, one true line, no traceback."""
    log = tmp_path / "worker.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEMCTL_")}
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bemctl", "worker"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
        try:
            deadline = time.monotonic() + 120
            while " on " not in log.read_text():  # its "worker ID on STORE" line
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "worker never started"
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            assert code == 130, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = log.read_text()
    assert err.strip().splitlines()[-1] == "worker stopped; it held no job"
    assert "Traceback" not in err and "cancelled" not in err


# -- retry ----------------------------------------------------------------------------------


def test_retry_a_job_cancelled_while_queued_by_its_job_id(project: Path, cli) -> None:
    assert cli("queue", "v1_dynrank", "--quick").code == 0
    assert cli("cancel", "v1_dynrank").code == 0
    by_run = cli("retry", "1")  # a queued-then-cancelled job has no run to name
    assert by_run.code == 2
    assert by_run.err.endswith(f"no such queued run in {_db(project)}; to retry job 1, use --job\n")
    by_job = cli("retry", "--job", "1")
    assert by_job.code == 0, by_job.err
    assert "queued job 2: v1_dynrank" in by_job.out and "retry of job 1" in by_job.out
    assert [(j.id, j.status) for j in _jobs(project)] == [(1, "cancelled"), (2, "queued")]
    still = cli("retry", "--job", "2")
    assert (still.code, still.err) == (2, "error: job 2: it is still queued; cancel it first\n")
    missing = cli("retry", "--job", "99")
    assert missing.code == 2 and missing.err == f"error: job 99: no such job in {_db(project)}\n"
    assert cli("retry", "1", "--job").code == 0  # the flag may come after the id too
    assert len(_jobs(project)) == 3
