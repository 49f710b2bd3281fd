"""The Results screen, pixel for pixel, on fixed comparison rows (one per verdict)."""

from __future__ import annotations

from pathlib import Path

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.results import ResultsScreen
from engine.settings import load_settings
from tests.bemctl.tui.helpers import fixed_results_store, store_path, wait_for


def test_results_screen_snapshot(fast_project: Path, snap_compare) -> None:
    """PROMOTE in green, REJECT in red, INCONCLUSIVE in yellow; stats, gates, reasons."""
    fixed_results_store(store_path(fast_project))

    async def show_results(pilot) -> None:
        await pilot.press("2")
        app = pilot.app
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ResultsScreen) and app.screen.shown,
            "results",
        )
        await pilot.pause()

    assert snap_compare(
        BemctlApp(load_settings()), terminal_size=(130, 46), run_before=show_results
    )
