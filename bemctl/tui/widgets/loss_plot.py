"""A run's training curve against step, redrawn as the worker writes new steps; titled
with what its steps measure (the language-model loss, AR1's policy objective, ...)."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    curve_title = ""  # what the plot is titled with (what its steps measure)

    def on_mount(self) -> None:
        self.set_curve([], [])

    def set_curve(
        self, steps: Sequence[int], losses: Sequence[float], quantity: str = "training loss"
    ) -> None:
        self.curve_title = quantity if steps else f"{quantity} (no steps yet)"
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.curve_title)
        plt.xlabel("step")
        if steps:
            plt.plot(list(steps), list(losses), marker="braille")
        self.refresh()
