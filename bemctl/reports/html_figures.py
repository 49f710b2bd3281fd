"""The report's figures: training curves per quantity, the forest plot of paired
differences and an online run's stream timeline, drawn with matplotlib and encoded as PNG
for `bemctl.reports.html`.

Plots use matplotlib's object API with the Agg canvas, never pyplot: no display is needed
and no figure is left registered globally.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bemctl.reports.curves import Points, RunCurve, as_curve
from store.states import Role

Curves = Mapping[int, RunCurve | Points]

# The default style, whatever the user's matplotlibrc says, so the same data draws the
# same pixels (and text.usetex or odd fonts cannot break a report).
_STYLE: list[Any] = ["default", {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}]
_BASELINE, _VARIANT = "#4c72b0", "#dd8452"
_ABOVE, _BELOW, _ACROSS = "#2e9e2e", "#c93030", "#555555"  # CI above 0, below 0, contains 0
_THRESHOLD = "#8e44ad"  # min_improvement
# stream timeline: the scores per live batch, and the stream events marked on it
_STREAM_SERIES = (  # (point field, colour, line style)
    ("serving", "#1f77b4", "-"),
    ("shadow", "#dd8452", "-"),
    ("deployed", "#777777", ":"),
)
_STREAM_MARKS = {  # kind -> (colour, line style); canary decisions are not marked
    "promotion": ("#2e9e2e", "-"),
    "rollback": ("#c93030", "--"),
    "drift_alarm": ("#8e44ad", ":"),
}


def png(fig: Figure) -> bytes:
    """Encode and release a figure; no Software/date metadata, so output is reproducible."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    finally:
        fig.clear()
    return buffer.getvalue()


def img(image: bytes, alt: str) -> str:
    """An <img> tag holding the PNG inline, as a base64 `data:` URI."""
    data = base64.b64encode(image).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def arm_curves(r: dict[str, Any], curves: Curves) -> dict[str, RunCurve]:
    """role -> its run's curve, for the arms that logged at least one step."""
    found = {}
    for role in Role:
        curve = as_curve(curves.get(r[f"{role}_metrics"]["run_id"]))
        if curve.points:
            found[role] = curve
    return found


def curves_figure(r: dict[str, Any], curves: Curves) -> Figure | None:
    """Training curves, one panel per quantity the arms logged (the language-model loss,
    AR1's policy objective, ...), each with its own y axis and name; None when neither arm
    logged a step. Arms that log the same quantity share a panel, so they compare directly.
    """
    arms = arm_curves(r, curves)
    if not arms:
        return None
    panels: dict[str, list[str]] = {}
    for role, curve in arms.items():
        panels.setdefault(curve.label, []).append(role)
    colours = {Role.BASELINE: _BASELINE, Role.VARIANT: _VARIANT}
    with matplotlib.style.context(_STYLE):
        fig = Figure(figsize=(7, 0.4 + 2.8 * len(panels)))
        axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
        for ax, (quantity, roles) in zip(axes, panels.items(), strict=True):
            for role in roles:
                curve = arms[role]
                steps, values = zip(*curve.points, strict=True)
                marker = "o" if len(steps) <= 30 else None
                run_id = r[f"{role}_metrics"]["run_id"]
                ax.plot(
                    steps,
                    values,
                    color=colours[role],
                    marker=marker,
                    ms=3,
                    label=f"{role} (run {run_id})",
                )
            ax.set_xlabel("step")
            ax.set_ylabel(quantity, parse_math=False)
            ax.set_title(f"{r['experiment_id']}: {quantity}", parse_math=False)
            legend = ax.legend()
            for text in legend.get_texts():
                text.set_parse_math(False)
        fig.tight_layout()
        return fig


@dataclass(frozen=True)
class ForestRow:
    """One experiment's interval in a forest-plot panel (one metric)."""

    experiment: str
    estimate: float
    low: float
    high: float
    threshold: float | None  # the min_improvement gate's, for this experiment and metric
    degenerate: bool
    underpowered: bool

    @property
    def colour(self) -> str:
        return _ABOVE if self.low > 0 else _BELOW if self.high < 0 else _ACROSS


def forest_rows(records: list[dict[str, Any]]) -> dict[str, list[ForestRow]]:
    """metric -> one row per experiment that measured it, in the records' order."""
    panels: dict[str, list[ForestRow]] = {}
    for r in records:
        thresholds = {
            g["metric"]: g["threshold"] for g in r["gates"] if g["gate"] == "min_improvement"
        }
        power = r["statistical_validation"]["power_analysis"]
        for metric, ci in r["statistical_validation"]["bca_bootstrap"].items():
            if None in (ci["estimate"], ci["lower"], ci["upper"]):
                continue
            panels.setdefault(metric, []).append(
                ForestRow(
                    str(r["experiment_id"]),
                    ci["estimate"],
                    ci["lower"],
                    ci["upper"],
                    thresholds.get(metric),
                    bool(ci.get("degenerate")),
                    bool(power.get(metric, {}).get("underpowered")),
                )
            )
    return panels


def forest_xlim(rows: Sequence[ForestRow]) -> tuple[float, float]:
    """A panel's x range: its intervals, 0 and its thresholds, with a margin; a panel whose
    intervals are all one point at 0 still gets a width."""
    values = [0.0]
    for row in rows:
        values += [row.low, row.high, row.estimate]
        if row.threshold is not None:
            values.append(row.threshold)
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1e-3)
    pad = 0.08 * span
    return lo - pad, hi + pad


def forest_figure(records: list[dict[str, Any]]) -> Figure | None:
    """One panel per metric, each on its own x scale: per experiment a point at Δ and a bar
    for its CI, a dashed line at 0 and the min_improvement threshold in purple.

    Why panels: on one shared axis chrF/BLEU intervals (points, 0–100) squash exact-match
    intervals (fractions, 0–1) into dots, and those are often the ones a verdict turns on.
    """
    panels = forest_rows(records)
    if not panels:
        return None
    heights = [len(rows) + 1.2 for rows in panels.values()]
    with matplotlib.style.context(_STYLE):
        fig = Figure(figsize=(8, 0.5 + 0.38 * sum(heights)))
        axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[
            :, 0
        ]
        for ax, (metric, rows) in zip(axes, panels.items(), strict=True):
            _forest_panel(ax, metric, rows)
        fig.tight_layout()
        return fig


def _forest_panel(ax, metric: str, rows: list[ForestRow]) -> None:
    ys = list(range(len(rows), 0, -1))  # first row on top
    for y, row in zip(ys, rows, strict=True):
        ax.hlines(y, row.low, row.high, color=row.colour, linewidth=2.5)
        face = "white" if row.underpowered else row.colour
        ax.plot([row.estimate], [y], "o", color=row.colour, mfc=face, ms=6, zorder=3)
    ax.axvline(0, color="black", linewidth=0.9, linestyle="--", label="0")
    thresholds = {row.threshold for row in rows if row.threshold is not None}
    if len(thresholds) == 1:
        [t] = thresholds
        ax.axvline(
            t, color=_THRESHOLD, linewidth=1.2, linestyle=":", label=f"min_improvement {t:g}"
        )
    else:  # experiments with different thresholds: a tick on each row
        for i, (y, row) in enumerate(zip(ys, rows, strict=True)):
            if row.threshold is not None:
                ax.vlines(
                    row.threshold,
                    y - 0.35,
                    y + 0.35,
                    color=_THRESHOLD,
                    linewidth=1.5,
                    label="min_improvement" if i == 0 else None,
                )
    labels = []
    for row in rows:
        flags = [
            f
            for f, on in (("all Δ equal", row.degenerate), ("underpowered", row.underpowered))
            if on
        ]
        labels.append(row.experiment + (f" ({', '.join(flags)})" if flags else ""))
    ax.set_yticks(ys, labels, parse_math=False)
    ax.set_ylim(0.4, len(rows) + 0.6)
    ax.set_xlim(*forest_xlim(rows))
    ax.set_title(metric, parse_math=False, loc="left", fontweight="bold")
    ax.set_xlabel(f"Δ {metric} (variant − baseline, {metric}'s own units)", parse_math=False)
    ax.grid(axis="y", visible=False)
    # beside the panel, never over an interval (a one-row panel has no free corner)
    legend = ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
    for text in legend.get_texts():
        text.set_parse_math(False)


def stream_marks(stream: Mapping[str, Any]) -> dict[str, list[int]]:
    """kind -> the live batches it happened at, for the kinds the timeline marks."""
    marks = {}
    for kind in _STREAM_MARKS:
        batches = sorted({e["batch"] for e in stream["events"] if e["kind"] == kind})
        if batches:
            marks[kind] = batches
    return marks


def stream_figure(r: Mapping[str, Any]) -> Figure | None:
    """The variant run's stream: serving, shadow and deployed exact match per live batch,
    a vertical line where it promoted, rolled back or raised a drift alarm; None for a
    record without a stream (every A/B comparison, and records before schema 7).

    Why one panel: the point of the plot is reading a drop of the serving line against the
    deployed reference and the event that answered it, so all three share one axis.
    """
    stream = r.get("stream")
    if not stream or not stream["points"]:
        return None
    points = stream["points"]
    batches = [p["batch"] for p in points]
    marker = "o" if len(points) <= 30 else None
    with matplotlib.style.context(_STYLE):
        fig = Figure(figsize=(7, 3.2))
        ax = fig.subplots()
        for name, colour, style in _STREAM_SERIES:
            ax.plot(
                batches,
                [p[name] for p in points],
                color=colour,
                linestyle=style,
                marker=marker if style == "-" else None,  # deployed: the dotted reference
                ms=3,
                label=name,
            )
        for kind, at in stream_marks(stream).items():
            colour, style = _STREAM_MARKS[kind]
            for i, batch in enumerate(at):
                label = kind.replace("_", " ") if i == 0 else None  # one legend entry a kind
                ax.axvline(batch, color=colour, linestyle=style, linewidth=1.2, label=label)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("live batch")
        ax.set_ylabel("exact match (batch mean)")
        ax.set_title(
            f"{r['experiment_id']}: stream timeline (run {stream['run_id']})", parse_math=False
        )
        legend = ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
        for text in legend.get_texts():
            text.set_parse_math(False)
        fig.tight_layout()
        return fig
