"""One experiment on the Results screen: name and verdict, why it is underpowered (if it is),
the forest plot, statistics, gates, reasons."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from bemctl.tui.widgets.forest_plot import ForestPlot, rows_of
from bemctl.tui.widgets.gate_table import GateTable
from bemctl.tui.widgets.stats_table import StatsTable
from bemctl.tui.widgets.verdict_badge import VerdictBadge
from store.console import ExperimentResult


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

    def __init__(self, result: ExperimentResult) -> None:
        super().__init__(id=f"result-{result.experiment}")
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        with Horizontal(classes="result-title"):
            yield Label(r.experiment, classes="experiment-name", markup=False)
            yield VerdictBadge(r.verdict)
            yield Label(
                f"comparison {r.comparison_id} · batch {r.batch_id} · "
                f"runs {r.baseline_run_id} (baseline) / {r.variant_run_id} (variant)",
                classes="result-meta",
                markup=False,
            )
        if r.underpowered:
            yield Static(_underpowered(r.underpowered), classes="underpowered")
        yield ForestPlot(rows_of(r), id=f"forest-{r.experiment}")
        yield StatsTable(r.metrics)
        yield GateTable(r.gates)
        yield Static(_reasons(r.reasons), classes="reasons")


def _reasons(reasons: tuple[str, ...]) -> Text:
    if not reasons:
        return Text("✓ all gates passed", style="green")
    text = Text()
    for i, reason in enumerate(reasons):
        underpowered = reason.startswith("underpowered")
        text.append("? " if underpowered else "✗ ", style="yellow" if underpowered else "red")
        text.append(reason + ("\n" if i < len(reasons) - 1 else ""))
    return text


def _underpowered(notes: tuple[str, ...]) -> Text:
    text = Text()
    text.append("underpowered: ", style="bold yellow")
    text.append("; ".join(notes), style="yellow")
    text.append(" — neither PROMOTE nor REJECT is supported by this much evidence", style="dim")
    return text
