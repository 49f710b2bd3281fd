"""A run's training loss against step, redrawn as the worker writes new steps."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    def on_mount(self) -> None:
        self.set_curve([], [])

    def set_curve(self, steps: Sequence[int], losses: Sequence[float]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("training loss" if steps else "training loss (no steps yet)")
        plt.xlabel("step")
        if steps:
            plt.plot(list(steps), list(losses), marker="braille")
        self.refresh()
