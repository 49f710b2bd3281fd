"""Per-metric statistics of one comparison, as `bemctl run` prints them (fewer columns)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from bemctl.tui.format import num
from store.console import MetricResult

COLUMNS = ("metric", "n", "baseline", "variant", "Δ", "BCa CI", "p", "adj. p", "d_z", "power")


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
                m.metric if m.identical_to is None else f"{m.metric} (= {m.identical_to})",
                Text(str(m.n), justify="right"),
                Text(num(m.baseline), justify="right"),
                Text(num(m.variant), justify="right"),
                Text(f"{m.delta:+.4f}", justify="right"),
                _interval(m),
                Text(num(m.p, ".3g"), justify="right"),
                Text(num(m.p_adjusted, ".3g"), justify="right"),
                Text(num(m.d_z, ".3f"), justify="right"),
                _power(m),
            )


def _interval(m: MetricResult) -> Text:
    text = Text(f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]")
    if m.degenerate:  # a point: every paired difference was the same
        text.append(" all Δ equal", style="yellow")
    return text


def _power(m: MetricResult) -> Text:
    text = Text(num(m.power, ".2f"), justify="right")
    if m.underpowered:
        needed = f", n≥{m.n_needed}" if m.n_needed is not None else ""
        text.append(f" underpowered{needed}", style="yellow")
    return text
