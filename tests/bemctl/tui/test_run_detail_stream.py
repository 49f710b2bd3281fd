"""Run detail of an online run: its stream timeline plotted and its stream events listed,
both following the stream live; an A/B run shows neither."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.run_detail import RunDetailScreen
from bemctl.tui.widgets.stream_plot import TITLE, StreamPlot
from engine.settings import load_settings
from store.db import Store
from store.stream import EventRow, PointRow, record_stream
from tests.bemctl.tui.helpers import add_job, add_run, store_path, wait_for

pytestmark = pytest.mark.anyio


def _point(batch: int) -> PointRow:
    source = "deployed" if batch < 2 else "shadow@2"
    return PointRow(batch, "a", 0.4 + 0.05 * batch, 0.45 + 0.05 * batch, 0.4, source)


EVENTS = [
    EventRow(0, 2, "canary", "canary passed: +0.10 on 16 examples"),
    EventRow(1, 2, "promotion", "shadow promoted at batch 2"),
    EventRow(2, 4, "drift_alarm", "drift: serving fell 0.2 below its mean"),
]


def _rows(table: DataTable) -> list[tuple[str, ...]]:
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


async def test_online_run_plots_its_stream_and_lists_its_events_live(fast_project: Path) -> None:
    with Store(store_path(fast_project)) as store:
        exp, job = add_job(store, "ol_shadow")
        run = add_run(store, exp, job, "variant", status="running", step=0)
        record_stream(store, run, [_point(b) for b in range(5)], EVENTS)
    app = BemctlApp(load_settings())
    async with app.run_test(size=(150, 44)) as pilot:
        app.push_screen(RunDetailScreen(run))
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, RunDetailScreen)
                and app.screen.detail is not None
                and len(app.screen.detail.stream_points) == 5
            ),
            "the run's five live batches",
        )
        screen = app.screen
        plot = screen.query_one(StreamPlot)
        assert screen.query_one("#run-stream").display and plot.display
        assert plot.plot_title == TITLE
        assert plot.batches == [0, 1, 2, 3, 4]
        assert plot.series == {
            "serving": [0.4 + 0.05 * b for b in range(5)],
            "shadow": [0.45 + 0.05 * b for b in range(5)],
            "deployed": [0.4] * 5,
        }
        assert plot.marks == {"promotion": [2], "drift_alarm": [4]}  # canary: listed only
        table = screen.query_one("#run-stream-events", DataTable)
        assert _rows(table) == [(str(e.batch), e.kind, e.detail) for e in EVENTS]

        # the worker writes the next live batch: a rollback right after the alarm
        with Store(store_path(fast_project)) as store:
            record_stream(store, run, [_point(5)], [EventRow(3, 5, "rollback", "back to v0")])
        await wait_for(pilot, lambda: len(plot.batches) == 6, "the sixth live batch")
        assert plot.marks == {"promotion": [2], "rollback": [5], "drift_alarm": [4]}
        assert _rows(table)[-1] == ("5", "rollback", "back to v0")


async def test_ab_run_hides_the_stream(fast_project: Path) -> None:
    with Store(store_path(fast_project)) as store:
        exp, job = add_job(store, "v1_dynrank")
        run = add_run(store, exp, job, "variant", status="succeeded", step=4)
    app = BemctlApp(load_settings())
    async with app.run_test(size=(150, 44)) as pilot:
        app.push_screen(RunDetailScreen(run))
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, RunDetailScreen) and len(app.screen.curve) == 4,
            "the run's four steps",
        )
        screen = app.screen
        assert screen.detail is not None and screen.detail.stream_points == ()
        assert not screen.query_one("#run-stream").display
        assert screen.query_one(StreamPlot).batches == []
        assert screen.query_one("#run-stream-events", DataTable).row_count == 0
