"""Results: each experiment's newest comparison, verdict first, then the numbers behind it.

Reads the report record every other view reads (`bemctl.reports.records`), so the console
shows what the reports show, a protocol's sections included. Rebuilt only when the records
change (a batch was decided), not on every tick.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from bemctl.reports.record_schema import ComparisonRecord
from bemctl.reports.records import build_records
from bemctl.tui.screens.base import LiveScreen, StatusLine
from bemctl.tui.widgets.result_panel import ResultPanel
from store.db import Store


class ResultsScreen(LiveScreen):
    AUTO_FOCUS = "#results"

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[ComparisonRecord] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield VerticalScroll(id="results")
        yield StatusLine()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Results"

    def fetch(self, store: Store | None) -> list[ComparisonRecord]:
        return [] if store is None else build_records(store)

    async def show(self, data: list[ComparisonRecord]) -> None:
        if data == self.shown:
            return
        self.shown = data
        box = self.query_one("#results", VerticalScroll)
        await box.remove_children()
        if not data:
            await box.mount(
                Static(
                    "No finished comparisons yet: verdicts appear here when every job of a "
                    "batch has finished.",
                    id="no-results",
                    markup=False,
                )
            )
            return
        await box.mount_all([ResultPanel(r) for r in data])
