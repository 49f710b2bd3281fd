"""Per-metric statistics of one comparison, as `bemctl run` prints them (fewer columns)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from bemctl.tui.format import num
from store.console import MetricResult

COLUMNS = ("metric", "n", "baseline", "variant", "Δ", "BCa CI", "p", "adj. p", "d_z")


class StatsTable(DataTable[str | Text]):
    DEFAULT_CSS = """
    StatsTable {
        height: auto;
    }
    """

    def __init__(self, metrics: Sequence[MetricResult], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._metrics = tuple(metrics)

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)
        for m in self._metrics:
            self.add_row(
                m.metric,
                Text(str(m.n), justify="right"),
                Text(num(m.baseline), justify="right"),
                Text(num(m.variant), justify="right"),
                Text(f"{m.delta:+.4f}", justify="right"),
                f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]",
                Text(num(m.p, ".3g"), justify="right"),
                Text(num(m.p_adjusted, ".3g"), justify="right"),
                Text(num(m.d_z, ".3f"), justify="right"),
            )
