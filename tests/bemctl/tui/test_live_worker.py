"""Live refresh against real worker processes: what another process writes shows up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.queue_runs import QueueRunsScreen
from engine.settings import load_settings
from tests.bemctl.tui.helpers import wait_for

pytestmark = pytest.mark.anyio

TRAIN_STEPS = 40  # long enough (a few seconds) for progress to be seen mid-training


def _cells(app: BemctlApp, key: str) -> dict[str, str]:
    screen = app.screen
    assert isinstance(screen, QueueRunsScreen)
    names = ("run", "job", "experiment", "role", "seed", "status", "progress", "step")
    return dict(zip(names, (str(c) for c in screen.table.get_row(key)), strict=False))


async def test_progress_of_a_worker_in_another_process(filled_project: Path, cli) -> None:
    """Run 3 (the new job's baseline) is watched through the table while a separate
    `bemctl worker --once` trains it; then the worker is stopped with SIGTERM and the
    console shows the job handed back to the queue."""
    toml = filled_project / "bemctl.toml"
    toml.write_text(toml.read_text().replace("train_steps = 6", f"train_steps = {TRAIN_STEPS}"))
    queued = cli("queue", "v1_dynrank", "--quick")
    assert queued.code == 0 and "queued job 2" in queued.out
    app = BemctlApp(load_settings())
    log = (filled_project / "worker.log").open("wb")
    async with app.run_test(size=(160, 40)) as pilot:

        def rows() -> dict[str, object]:
            return app.screen.table.rows_by_key

        await wait_for(pilot, lambda: "job-2" in rows(), "queued job")
        assert _cells(app, "job-2")["status"] == "queued"
        worker = subprocess.Popen(
            [sys.executable, "-m", "bemctl", "worker", "--once"],
            cwd=filled_project,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            seen: list[tuple[str, str]] = []  # (status, step) of run 3, as displayed
            deadline = time.monotonic() + 120
            while not seen or seen[-1][0] != "succeeded":
                if "run-3" in rows():
                    cells = _cells(app, "run-3")
                    if not seen or seen[-1] != (cells["status"], cells["step"]):
                        seen.append((cells["status"], cells["step"]))
                assert worker.poll() is None, f"worker exited early ({worker.returncode})"
                assert time.monotonic() < deadline, f"run 3 did not finish; saw {seen}"
                await pilot.pause(0.1)
            worker.send_signal(signal.SIGTERM)  # what the console's stop key does
            assert worker.wait(timeout=60) == 130
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            log.close()
        await wait_for(
            pilot,
            lambda: "job-2" in rows() and _cells(app, "job-2")["status"] == "queued",
            "the job back in the queue",
        )
        assert _cells(app, "run-4")["status"] in ("interrupted", "succeeded")
    steps = [int(step.split("/")[0]) for status, step in seen if status == "running"]
    assert any(0 < s < TRAIN_STEPS for s in steps), f"no progress seen mid-training: {seen}"
    assert len(set(steps)) >= 2, f"progress did not move: {seen}"
    assert steps == sorted(steps)
    assert seen[-1] == ("succeeded", f"{TRAIN_STEPS}/{TRAIN_STEPS}")


async def test_console_starts_and_stops_its_worker(filled_project: Path) -> None:
    app = BemctlApp(load_settings())
    log = app.local_worker.log_path
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "store")
        await pilot.press("w")
        ready = f" on {app.settings.store_path}".encode()  # its "worker ID on STORE" line
        await wait_for(pilot, lambda: log.exists() and ready in log.read_bytes(), "worker", 60)
        assert "console worker: running (pid" in app.status_text()
        config = str(filled_project / "bemctl.toml")
        assert app.local_worker.command()[1:] == ["-m", "bemctl", "--config", config, "worker"]
        await pilot.press("W")
        await wait_for(pilot, lambda: not app.local_worker.running, "worker stopped", 30)
        assert app.local_worker.proc is not None
        assert app.local_worker.proc.returncode == 130  # SIGTERM: job handed back, clean exit
        await wait_for(pilot, lambda: "exited (130)" in app.status_text(), "status updated")
    assert b"worker stopped" in log.read_bytes()
