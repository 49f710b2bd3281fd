"""The Results screen's forest plot (one axis per metric) and its underpowered note."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.results import ResultsScreen
from bemctl.tui.widgets.forest_plot import (
    ESTIMATE,
    INTERVAL,
    THRESHOLD,
    ZERO,
    ForestPlot,
    ForestRow,
    axis_range,
    forest_lines,
    strip,
)
from bemctl.tui.widgets.stats_table import StatsTable
from engine.settings import load_settings
from store.db import Store
from store.models import StatResult
from tests.bemctl.tui.helpers import fixed_results_store, store_path, wait_for

CHRF = ForestRow("chrf", 0.2, -0.3, 0.7, threshold=0.005)  # points: ±0.5
EM = ForestRow("exact_match", 0.01, -0.04, 0.06, threshold=0.005)  # fraction: ±0.05


def _interval_cells(text: str) -> int:
    return sum(text.count(c) for c in (INTERVAL, ESTIMATE, ZERO, THRESHOLD))


@pytest.mark.parametrize("row", [CHRF, EM])
def test_each_row_axis_fits_its_own_interval(row: ForestRow) -> None:
    lo, hi = axis_range(row)
    assert lo < row.low and hi > row.high  # the whole interval is on the axis
    # ...and the axis is not much wider than interval, 0 and threshold: the interval fills
    # most of it, whatever the metric's scale
    assert (row.high - row.low) / (hi - lo) > 0.8


def test_metrics_of_different_scales_both_stay_readable() -> None:
    width = 60
    chrf, em = (strip(r, width).plain for r in (CHRF, EM))
    # on a shared axis (-0.3..0.7) the EM interval (0.1 wide) would cover 6 of 60 cells
    assert _interval_cells(em) >= 0.8 * width and _interval_cells(chrf) >= 0.8 * width
    for row, line in ((CHRF, chrf), (EM, em)):
        lo, hi = axis_range(row)
        zero_at = line.index(ZERO)
        assert zero_at == round((0 - lo) / (hi - lo) * (width - 1))
        assert line.index(ESTIMATE) == round((row.estimate - lo) / (hi - lo) * (width - 1))
        assert THRESHOLD in line  # min_improvement marked (next to 0 at these scales)


def test_lines_label_their_axis_ends_and_flags() -> None:
    flagged = ForestRow("f1", 0.0, 0.0, 0.0, threshold=0.005, degenerate=True, underpowered=True)
    lines = [t.plain for t in forest_lines([CHRF, EM, flagged], 120)]
    assert len(lines) == 4  # three metrics and the key
    assert lines[0].startswith("chrf ") and "-0.36" in lines[0] and "+0.76" in lines[0]
    assert lines[1].startswith("exact_match ") and "-0.046" in lines[1] and "+0.066" in lines[1]
    assert "Δ +0.2000 [-0.3000, +0.7000]" in lines[0]
    assert "all Δ equal, underpowered" in lines[2]
    assert "min_improvement" in lines[3] and "own axis" in lines[3]
    assert all(len(line) <= 120 for line in lines)


@pytest.mark.anyio
async def test_results_screen_shows_forest_and_underpowered_note(fast_project: Path) -> None:
    fixed_results_store(store_path(fast_project))
    with Store(store_path(fast_project)) as store, store.session() as session:
        # exp_promote's f1 differences repeat exact_match's (schema 0006 identical_to)
        f1 = session.exec(
            select(StatResult).where(StatResult.metric == "f1", StatResult.comparison_id == 1)
        ).first()
        assert f1 is not None
        f1.identical_to = "exact_match"
    app = BemctlApp(load_settings())
    async with app.run_test(size=(140, 60)) as pilot:
        await pilot.press("2")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ResultsScreen) and app.screen.query(ForestPlot),
            "forest plots",
        )
        screen = app.screen
        plots = {p.id: p for p in screen.query(ForestPlot)}
        assert set(plots) == {"forest-exp_promote", "forest-exp_reject", "forest-exp_unsure"}
        reject = str(plots["forest-exp_reject"].render()).splitlines()
        em_line = next(line for line in reject if line.startswith("exact_match"))
        chrf_line = next(line for line in reject if line.startswith("chrf"))
        # Δ -0.01 [-0.03, +0.01] and Δ -1 [-3, +1] points: each on its own axis, whose
        # ends are labelled, each interval spanning most of its line
        assert "-0.0324" in em_line and "+0.0124" in em_line
        assert "-3.24" in chrf_line and "+1.24" in chrf_line
        width = plots["forest-exp_reject"].content_region.width
        assert _interval_cells(em_line) > 0.4 * width and _interval_cells(chrf_line) > 0.4 * width
        assert {THRESHOLD, ZERO} <= set(em_line) and {THRESHOLD, ZERO} <= set(chrf_line)

        notes = screen.query(".underpowered")
        assert len(notes) == 1  # only exp_unsure is underpowered
        assert "underpowered: exact_match: n=120 < 200" in str(notes.first().render())
        assert notes.first().parent is not None and notes.first().parent.id == "result-exp_unsure"

        unsure = screen.query_one("#result-exp_unsure").query_one(StatsTable)
        em_row, f1_row = (unsure.get_row_at(i) for i in range(2))
        assert "underpowered, n≥410" in str(em_row[-1])  # power column
        assert "all Δ equal" in str(f1_row[5])  # the CI column of the point interval
        assert "all Δ equal" in str(plots["forest-exp_unsure"].render())
        promote = screen.query_one("#result-exp_promote").query_one(StatsTable)
        assert str(promote.get_row_at(1)[0]) == "f1 (= exact_match)"
