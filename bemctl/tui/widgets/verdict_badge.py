"""PROMOTE / REJECT / INCONCLUSIVE as a coloured badge, in the colours the CLI prints."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from bemctl.verdicts import verdict_colour


class VerdictBadge(Static):
    DEFAULT_CSS = """
    VerdictBadge {
        width: auto;
        height: 1;
    }
    """

    def __init__(self, verdict: str, *, id: str | None = None) -> None:
        # "INCONCLUSIVE (underpowered)" -> class verdict-inconclusive
        kind = verdict.split()[0].lower() if verdict else "unknown"
        super().__init__(badge_text(verdict), id=id, classes=f"verdict-{kind}")
        self.verdict = verdict


def badge_text(verdict: str) -> Text:
    return Text(f" {verdict} ", style=f"bold black on {verdict_colour(verdict)}")
