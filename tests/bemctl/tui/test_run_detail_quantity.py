"""Run detail: the curve is titled with what its steps measure; the job's phase progress."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.run_detail import RunDetailScreen
from bemctl.tui.widgets.loss_plot import LossPlot
from engine.settings import load_settings
from store import queries
from store.db import Store
from store.types import utcnow
from tests.bemctl.tui.helpers import add_job, add_run, set_job, store_path, wait_for

pytestmark = pytest.mark.anyio

PG = "policy objective (−mean reward)"


async def test_run_detail_names_the_curve_quantity_and_shows_phase_progress(
    fast_project: Path,
) -> None:
    with Store(store_path(fast_project)) as store:
        exp, job = add_job(store, "ar1_pg")
        set_job(
            store,
            job,
            "running",
            phase="ar1_pg: train variant (seed 0)",
            phase_step=3,
            phase_total=10,
            phase_detail="loss -0.310",
            phase_started_at=utcnow() - timedelta(seconds=30),
        )
        run = add_run(store, exp, job, "variant", status="running", step=3, total=10)
        queries.update_run(store, run, curve_quantity=PG)
    app = BemctlApp(load_settings())
    async with app.run_test(size=(150, 40)) as pilot:
        app.push_screen(RunDetailScreen(run))
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, RunDetailScreen) and len(app.screen.curve) == 3,
            "the run's three steps",
        )
        assert app.screen.query_one(LossPlot).curve_title == PG
        info = str(app.screen.query_one("#run-info").render())
        match = re.search(
            r"ar1_pg: train variant \(seed 0\) 3/10 loss -0\.310 ETA (\d+)m(\d\d)s", info
        )
        assert match is not None, info
        # 3 of 10 steps in 30 s (plus however long this test took to get here): 70 s to go
        eta = 60 * int(match.group(1)) + int(match.group(2))
        assert 70 <= eta <= 70 + 7 / 3 * 30
