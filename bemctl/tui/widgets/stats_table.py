"""Per-metric statistics of one comparison, as `bemctl run` prints them (fewer columns)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from bemctl.reports.record_schema import ComparisonRecord
from bemctl.tui.format import num

COLUMNS = ("metric", "n", "baseline", "variant", "Δ", "BCa CI", "p", "adj. p", "d_z", "power")


class StatsTable(DataTable[str | Text]):
    DEFAULT_CSS = """
    StatsTable {
        height: auto;
    }
    """

    def __init__(self, record: ComparisonRecord, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._record = record

    def on_mount(self) -> None:
        r = self._record
        sv = r["statistical_validation"]
        fdr = sv["fdr_correction"]
        adjusted = dict(zip(fdr["metrics"], fdr["adjusted_p_values"], strict=True))
        for name in COLUMNS:
            self.add_column(name, key=name)
        for metric, ci in sv["bca_bootstrap"].items():
            test = sv["paired_tests"][metric]
            twin = sv.get("identical_metrics", {}).get(metric)
            self.add_row(
                metric if twin is None else f"{metric} (= {twin})",
                Text(str(test["n"]), justify="right"),
                Text(num(r["baseline_metrics"][metric]), justify="right"),
                Text(num(r["variant_metrics"][metric]), justify="right"),
                Text(f"{ci['estimate']:+.4f}", justify="right"),
                _interval(ci),
                Text(num(test["p_value"], ".3g"), justify="right"),
                Text(num(adjusted.get(metric), ".3g"), justify="right"),
                Text(num(sv["effect_sizes"][metric]["cohens_dz"], ".3f"), justify="right"),
                _power(sv["power_analysis"][metric]),
            )


def _interval(ci: dict[str, Any]) -> Text:
    text = Text(f"[{ci['lower']:+.4f}, {ci['upper']:+.4f}]")
    if ci["degenerate"]:  # a point: every paired difference was the same
        text.append(" all Δ equal", style="yellow")
    return text


def _power(power: dict[str, Any]) -> Text:
    text = Text(num(power["power"], ".2f"), justify="right")
    if power["underpowered"]:
        needed = f", n≥{power['n_needed']}" if power["n_needed"] is not None else ""
        text.append(f" underpowered{needed}", style="yellow")
    return text
