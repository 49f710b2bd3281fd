"""The promotion gates of one comparison: ✓/✗, what was observed, what it had to meet."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from bemctl.reports.record_schema import GateRecord
from bemctl.tui.format import num
from store.states import GateOutcome

PASS = Text("✓", style="bold green")
FAIL = Text("✗", style="bold red")
UNDECIDED = Text("?", style="bold yellow")
MARKS = {GateOutcome.PASS: PASS, GateOutcome.FAIL: FAIL, GateOutcome.INCONCLUSIVE: UNDECIDED}


class GateTable(DataTable[str | Text]):
    DEFAULT_CSS = """
    GateTable {
        height: auto;
    }
    """

    def __init__(self, gates: Sequence[GateRecord], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._gates = tuple(gates)

    def on_mount(self) -> None:
        self.add_columns("", "gate", "metric", "observed", "needs", "what")
        for g in self._gates:
            self.add_row(
                MARKS.get(g["outcome"], PASS if g["passed"] else FAIL),
                g["gate"],
                g["metric"] or "",
                num(g["observed"], ".4g"),
                f"{g['comparator']} {num(g['threshold'], '.4g')}",
                g["detail"],
            )
