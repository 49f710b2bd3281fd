"""The Results screen's forest plot: one line per metric, each on its own axis.

Why one axis per line: an experiment's metrics live on different scales (chrF and BLEU in
points 0–100, exact match as a fraction 0–1). On a shared axis the fraction's interval
shrinks to a dot, and that interval is often the one the verdict turns on. Each line is
scaled to its own interval, 0 and the `min_improvement` threshold, and prints its axis'
end values, so lines are read one by one, never compared by length.

Drawn with characters (no plotting library): a terminal cell is coarse, but an interval,
its estimate and two reference marks need no more than a line of text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import RenderableType
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from bemctl.reports.record_schema import ComparisonRecord

ESTIMATE, INTERVAL, AXIS, ZERO, THRESHOLD = "●", "━", "┈", "│", "╎"
ABOVE, BELOW, ACROSS = "green", "red", "yellow"  # interval above 0, below 0, contains 0
THRESHOLD_STYLE = "magenta"
MIN_STRIP = 12


@dataclass(frozen=True)
class ForestRow:
    label: str
    estimate: float
    low: float
    high: float
    threshold: float | None = None  # min_improvement for this metric
    degenerate: bool = False
    underpowered: bool = False

    @property
    def colour(self) -> str:
        return ABOVE if self.low > 0 else BELOW if self.high < 0 else ACROSS


def rows_of(record: ComparisonRecord) -> list[ForestRow]:
    sv = record["statistical_validation"]
    thresholds = {
        g["metric"]: g["threshold"] for g in record["gates"] if g["gate"] == "min_improvement"
    }
    return [
        ForestRow(
            metric,
            ci["estimate"],
            ci["lower"],
            ci["upper"],
            thresholds.get(metric),
            ci["degenerate"],
            sv["power_analysis"][metric]["underpowered"],
        )
        for metric, ci in sv["bca_bootstrap"].items()
    ]


def axis_range(row: ForestRow) -> tuple[float, float]:
    """The line's own axis: its interval, estimate, 0 and threshold, with a margin so the
    end marks do not sit on the frame. A point interval at 0 still gets a width."""
    values = [row.low, row.high, row.estimate, 0.0]
    if row.threshold is not None:
        values.append(row.threshold)
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1e-3)
    pad = 0.06 * span
    return lo - pad, hi + pad


def _number(x: float) -> str:
    return f"{x:+.3g}"


def strip(row: ForestRow, width: int) -> Text:
    """`width` cells: the axis, the interval in its colour, 0, the threshold, the estimate."""
    lo, hi = axis_range(row)

    def cell(x: float) -> int:
        return max(0, min(width - 1, round((x - lo) / (hi - lo) * (width - 1))))

    chars = [AXIS] * width
    styles = ["dim"] * width
    for i in range(cell(row.low), cell(row.high) + 1):
        chars[i], styles[i] = INTERVAL, row.colour
    zero = cell(0.0)
    chars[zero], styles[zero] = ZERO, "bold"
    if row.threshold is not None:
        at = cell(row.threshold)
        if at == zero and row.threshold != 0:  # a cell apart, on its side: both stay visible
            at = min(width - 1, at + 1) if row.threshold > 0 else max(0, at - 1)
        if at != zero:
            chars[at], styles[at] = THRESHOLD, f"bold {THRESHOLD_STYLE}"
    chars[cell(row.estimate)], styles[cell(row.estimate)] = ESTIMATE, f"bold {row.colour}"
    text = Text()
    for char, style in zip(chars, styles, strict=True):
        text.append(char, style=style)
    return text


def forest_lines(rows: Sequence[ForestRow], width: int) -> list[Text]:
    """One line per row — label, axis start, strip, axis end, Δ and CI, flags — then a key."""
    if not rows:
        return [Text("no metrics", style="dim")]
    label_w = max(len(r.label) for r in rows)
    ends = [(_number(a), _number(b)) for a, b in map(axis_range, rows)]
    lo_w = max(len(a) for a, _ in ends)
    hi_w = max(len(b) for _, b in ends)
    values = [f"Δ {r.estimate:+.4f} [{r.low:+.4f}, {r.high:+.4f}]" for r in rows]
    flags = [
        ", ".join(
            f for f, on in (("all Δ equal", r.degenerate), ("underpowered", r.underpowered)) if on
        )
        for r in rows
    ]
    value_w = max(len(v) for v in values)
    fixed = label_w + 1 + lo_w + 1 + 1 + hi_w + 2 + value_w + max(len(f) + 2 for f in flags)
    strip_w = max(MIN_STRIP, width - fixed)
    lines = []
    for row, (a, b), value, flag in zip(rows, ends, values, flags, strict=True):
        line = Text(f"{row.label:<{label_w}} ")
        line.append(f"{a:>{lo_w}} ", style="dim")
        line.append_text(strip(row, strip_w))
        line.append(f" {b:<{hi_w}}", style="dim")
        line.append(f"  {value:<{value_w}}")
        if flag:
            line.append(f"  {flag}", style="yellow")
        lines.append(line)
    key = Text("  ", style="dim")
    key.append(f"{ESTIMATE} Δ  {INTERVAL} CI ", style="dim")
    key.append("(")
    key.append("above 0", style=ABOVE)
    key.append(", ")
    key.append("below 0", style=BELOW)
    key.append(", ")
    key.append("contains 0", style=ACROSS)
    key.append(")  ")
    key.append(f"{ZERO} 0  ", style="bold")
    key.append(f"{THRESHOLD} min_improvement", style=THRESHOLD_STYLE)
    key.append("  · each line on its own axis (ends labelled)", style="dim")
    lines.append(key)
    return lines


class ForestPlot(Widget):
    """Δ with its BCa interval per metric of one comparison (see the module doc)."""

    DEFAULT_CSS = """
    ForestPlot {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, rows: Sequence[ForestRow], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows = tuple(rows)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.rows)) + 1  # a line per metric and the key; lines never wrap

    def render(self) -> RenderableType:
        text = Text("\n").join(forest_lines(self.rows, self.content_region.width or 100))
        text.no_wrap, text.overflow = True, "ellipsis"
        return text
