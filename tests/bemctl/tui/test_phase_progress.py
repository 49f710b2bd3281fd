"""A slow job-wide phase (like pre-training the base model while both runs wait) shows its
step, total, loss and ETA in the console and in `bemctl list`."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.queue_runs import QueueRunsScreen
from engine.progress import NullProgress
from engine.queue.control import JobControl, JobProgress
from engine.settings import load_settings
from store import jobs
from store.db import Store
from tests.bemctl.tui.helpers import add_job, add_run, store_path, wait_for

pytestmark = pytest.mark.anyio

PRETRAIN = "pre-train base model (cached after)"
LINE = re.compile(
    re.escape(PRETRAIN) + r" (\d+)/2000 loss (\d+\.\d{3}) ETA (\d+s|\d+m\d\ds|\d+h\d\dm)"
)


class SlowPhase(threading.Thread):
    """The runner's pre-training seen from the job row: a phase of 2000 steps that advances
    (about 50 steps a second, through the real JobControl throttle) until told to stop."""

    def __init__(self, db: Path, job_id: int, worker_id: str) -> None:
        super().__init__(daemon=True)
        self.db, self.job_id, self.worker_id = db, job_id, worker_id
        self.stop = threading.Event()
        self.step = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Store(self.db) as store:
                control = JobControl(store, self.job_id, self.worker_id, heartbeat_s=1, lease_s=60)
                try:
                    phase = JobProgress(NullProgress(), control).phase(PRETRAIN, 2000)
                    while not self.stop.is_set() and self.step < 1999:
                        self.step += 1
                        phase.advance(1, f"loss {5 - self.step / 1000:.3f}")
                        self.stop.wait(0.02)  # a training step's worth of work
                    phase.done()
                finally:
                    control.close()
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            self.error = exc


def _job_cells(app: BemctlApp, job_id: int) -> list[str] | None:
    screen = app.screen
    if not isinstance(screen, QueueRunsScreen):
        return None
    row = screen.table.rows_by_key.get(f"job-{job_id}")
    if row is None:
        return None
    return [str(c) for c in screen.table.get_row(f"job-{job_id}")]


async def test_console_and_list_show_the_phase_step_loss_and_eta(fast_project: Path, cli) -> None:
    db = store_path(fast_project)
    with Store(db) as store:
        exp, job_id = add_job(store, "slow_exp")
        worker = jobs.WorkerIdentity.here()
        assert jobs.claim_next(store, worker, 60) is not None
        runs = [
            add_run(store, exp, job_id, r, status="queued", step=0) for r in ("baseline", "variant")
        ]
    slow = SlowPhase(db, job_id, worker.id)
    slow.start()
    try:
        app = BemctlApp(load_settings())
        async with app.run_test(size=(200, 30)) as pilot:

            def moving() -> bool:
                cells = _job_cells(app, job_id)
                return bool(cells and LINE.search(cells[-1]) and 0 < _step(cells) < 2000)

            await wait_for(pilot, moving, "the job's line with pre-training step and ETA", 30)
            cells = _job_cells(app, job_id)
            assert cells is not None
            step = _step(cells)
            assert cells[5] == "running" and cells[7] == f"{step}/2000"
            assert cells[6] == f"{step / 2000:.0%}"  # progress is the phase's
            assert cells[10]  # ETA column filled
            # both runs are still waiting while the job pre-trains
            for run_id in runs:
                assert str(app.screen.table.get_row(f"run-{run_id}")[5]) == "queued"

            slow.stop.set()
            slow.join(timeout=30)
            assert not slow.is_alive() and slow.error is None
            last = slow.step
            await wait_for(
                pilot,
                lambda: (_job_cells(app, job_id) or [""])[7] == f"{last}/2000",
                f"the phase's last step ({last}) written when it ended",
            )
            assert f"loss {5 - last / 1000:.3f}" in (_job_cells(app, job_id) or [""])[-1]
    finally:
        slow.stop.set()
        slow.join(timeout=30)

    listed = cli("list")
    assert listed.code == 0, listed.err
    [line] = [ln for ln in listed.out.splitlines() if "slow_exp" in ln and "running" in ln]
    match = LINE.search(line)
    assert match is not None, line
    assert int(match.group(1)) == last and match.group(2) == f"{5 - last / 1000:.3f}"


def _step(cells: list[str]) -> int:
    match = LINE.search(cells[-1])
    return int(match.group(1)) if match else -1
