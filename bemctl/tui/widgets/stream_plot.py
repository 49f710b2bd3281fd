"""An online run's stream timeline: the exact match of the serving weights, the shadow and
the deployed adapter per live batch, with the batches where the stream promoted, rolled
back or raised a drift alarm marked, so a drop can be read against what the loop did.

What was drawn stays on the widget (`batches`, `series`, `marks`): plotext keeps it only
as terminal cells, and the console's tests check the data, not the pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from store.stream import EventRow, PointRow

TITLE = "stream timeline (exact match per live batch)"

# series name -> (colour, marker, style): deployed is the reference, drawn dim and dotted
_SERIES = {
    "serving": ("cyan+", "braille", None),
    "shadow": ("orange", "braille", None),
    "deployed": ("gray", "dot", "dim"),
}
# event kind -> its colour (a name plotext and Rich both know, so the event table can
# match the plot) and marker; canary decisions are listed in the table, not marked
MARK_COLOURS = {"promotion": "green", "rollback": "red", "drift_alarm": "magenta"}
_MARKERS = {"promotion": "▲", "rollback": "▼", "drift_alarm": "!"}


class StreamPlot(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.plot_title = TITLE
        self.batches: list[int] = []
        self.series: dict[str, list[float]] = {}
        self.marks: dict[str, list[int]] = {}

    def on_mount(self) -> None:
        self.set_stream([], [])

    def set_stream(self, points: Sequence[PointRow], events: Sequence[EventRow]) -> None:
        """Redraw from the whole stream so far (a few hundred batches at most)."""
        self.batches = [p.batch for p in points]
        self.series = {
            "serving": [p.serving for p in points],
            "shadow": [p.shadow for p in points],
            "deployed": [p.deployed for p in points],
        }
        self.marks = {
            kind: sorted({e.batch for e in events if e.kind == kind})
            for kind in MARK_COLOURS
            if any(e.kind == kind for e in events)
        }
        self.plot_title = TITLE if points else f"{TITLE}: no live batch yet"
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.plot_title)
        plt.xlabel("live batch")
        plt.ylim(0, 1)
        if points:
            for name, values in self.series.items():
                colour, marker, style = _SERIES[name]
                plt.plot(self.batches, values, label=name, color=colour, marker=marker, style=style)
            for kind, batches in self.marks.items():
                colour, marker = MARK_COLOURS[kind], _MARKERS[kind]
                for batch in batches:
                    plt.vline(batch, colour)
                # one marker per event at the top edge carries the legend entry
                plt.scatter(batches, [1.0] * len(batches), label=kind, color=colour, marker=marker)
        self.refresh()
