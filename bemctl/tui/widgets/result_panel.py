"""One experiment on the Results screen: name and verdict, why it is underpowered (if it is),
the forest plot, statistics, the protocol's sections, gates, reasons; all read from the
report record every other view reads (`bemctl.reports.records`)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from bemctl.reports.record_schema import ComparisonRecord
from bemctl.tui.widgets.forest_plot import ForestPlot, rows_of
from bemctl.tui.widgets.gate_table import GateTable
from bemctl.tui.widgets.section_table import SectionTable
from bemctl.tui.widgets.stats_table import StatsTable
from bemctl.tui.widgets.verdict_badge import VerdictBadge


class ResultPanel(Vertical):
    DEFAULT_CSS = """
    ResultPanel {
        height: auto;
        margin-bottom: 1;
    }
    ResultPanel > .result-title {
        height: 1;
    }
    ResultPanel .experiment-name {
        text-style: bold;
        margin-right: 1;
    }
    ResultPanel .result-meta {
        color: $text-muted;
        margin-left: 1;
    }
    ResultPanel > .reasons, ResultPanel > .underpowered {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, record: ComparisonRecord) -> None:
        super().__init__(id=f"result-{record['experiment_id']}")
        self.record = record

    def compose(self) -> ComposeResult:
        r = self.record
        name, decision = r["experiment_id"], r["acceptance_decision"]
        with Horizontal(classes="result-title"):
            yield Label(name, classes="experiment-name", markup=False)
            yield VerdictBadge(decision["overall_verdict"])
            yield Label(
                f"comparison {r['comparison_id']} · batch {r['invocation_id']} · "
                f"runs {r['baseline_metrics']['run_id']} (baseline) / "
                f"{r['variant_metrics']['run_id']} (variant)",
                classes="result-meta",
                markup=False,
            )
        if decision["underpowered"]:
            yield Static(_underpowered(decision["underpowered"]), classes="underpowered")
        yield ForestPlot(rows_of(r), id=f"forest-{name}")
        yield StatsTable(r)
        for section in r["sections"]:
            yield SectionTable(section, id=f"section-{name}-{section['key']}")
        yield GateTable(r["gates"])
        yield Static(_reasons(decision["reasons"]), classes="reasons")


def _reasons(reasons: list[str]) -> Text:
    if not reasons:
        return Text("✓ all gates passed", style="green")
    text = Text()
    for i, reason in enumerate(reasons):
        underpowered = reason.startswith("underpowered")
        text.append("? " if underpowered else "✗ ", style="yellow" if underpowered else "red")
        text.append(reason + ("\n" if i < len(reasons) - 1 else ""))
    return text


def _underpowered(notes: list[str]) -> Text:
    text = Text()
    text.append("underpowered: ", style="bold yellow")
    text.append("; ".join(notes), style="yellow")
    text.append(" — neither PROMOTE nor REJECT is supported by this much evidence", style="dim")
    return text
