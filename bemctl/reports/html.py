"""HTML rendering of report records: one self-contained file to mail or attach to a notebook.

Everything is inline (CSS, plots as base64 PNG `data:` URIs) so the file opens anywhere,
offline, and cannot break when moved. Plots use matplotlib's object API with the Agg
canvas, never pyplot: no display is needed and no figure is left registered globally.
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

from bemctl.reports import costs
from bemctl.reports.curves import Points, RunCurve, as_curve
from bemctl.reports.sections_view import html_lines as section_lines
from store.states import GateOutcome, Role, Verdict

Curves = Mapping[int, RunCurve | Points]

# The default style, whatever the user's matplotlibrc says, so the same data draws the
# same pixels (and text.usetex or odd fonts cannot break a report).
_STYLE: list[Any] = ["default", {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}]
_BASELINE, _VARIANT = "#4c72b0", "#dd8452"
_ABOVE, _BELOW, _ACROSS = "#2e9e2e", "#c93030", "#555555"  # CI above 0, below 0, contains 0
_THRESHOLD = "#8e44ad"  # min_improvement

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       padding: 0 1em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: 0.15em 0.6em; border-radius: 0.3em;
           font-weight: bold; }
.promote { background: #d3f4d3; color: #135e13; border: 1px solid #2e9e2e; }
.reject { background: #f9d4d4; color: #8a1212; border: 1px solid #c93030; }
.inconclusive { background: #fdf1c2; color: #6b5500; border: 1px solid #d4b000; }
.pass { color: #135e13; } .fail { color: #8a1212; font-weight: bold; }
.muted { color: #666; }
img { max-width: 100%; }
section { border-top: 2px solid #ddd; margin-top: 2em; }
""".strip()


def verdict_class(verdict: str) -> str:
    """CSS class for a verdict: green PROMOTE, red REJECT, yellow anything inconclusive."""
    if verdict == Verdict.PROMOTE:
        return "promote"
    if verdict == Verdict.REJECT:
        return "reject"
    return "inconclusive"


def render_html(records: list[dict[str, Any]], curves: Curves) -> str:
    """The whole report: summary, forest plot, then one section per experiment.

    `curves` maps run_id -> its RunCurve (see `curves.load_curves`; bare [(step, value), ...]
    lists count as language-model loss); runs missing from it are drawn as having no curve.
    """
    figure = forest_figure(records)
    forest = None if figure is None else _png(figure)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>bemctl report</title><style>{_CSS}</style></head><body>",
        "<h1>bemctl report</h1>",
        *_summary(records),
    ]
    if forest is not None:
        parts += [
            "<h2>Paired differences</h2>",
            '<p class="muted">Mean paired difference (variant − baseline) per experiment and '
            "metric with its BCa bootstrap interval (per metric, not adjusted for "
            "multiplicity), one panel per metric on that metric's own scale (a chrF point "
            "and an exact-match fraction are not comparable lengths). Green: interval above "
            "0, red: below 0, grey: contains 0; dashed: 0; purple: the min_improvement "
            "gate's threshold. Hollow: underpowered.</p>",
            _img(forest, "forest plot of paired differences with confidence intervals"),
        ]
    for index, record in enumerate(records):
        parts += _experiment(index, record, curves)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- sections -------------------------------------------------------------------------


def _summary(records: list[dict[str, Any]]) -> list[str]:
    rows = ["<table><tr><th>experiment</th><th>variant</th><th>verdict</th></tr>"]
    for index, r in enumerate(records):
        rows.append(
            f'<tr><td><a href="#exp-{index}">{escape(r["experiment_id"])}</a></td>'
            f"<td>{escape(r['variant'])}</td>"
            f"<td>{_verdict(r['acceptance_decision']['overall_verdict'])}</td></tr>"
        )
    rows.append("</table>")
    return rows


def _experiment(index: int, r: dict[str, Any], curves: Curves) -> list[str]:
    decision = r["acceptance_decision"]
    b, v = r["baseline_metrics"], r["variant_metrics"]
    reasons = decision["reasons"] or ["all gates passed"]
    out = [
        f'<section id="exp-{index}">',
        f"<h2>{escape(r['experiment_id'])}: {escape(r['variant_name'])}</h2>",
        f"<p>Verdict: {_verdict(decision['overall_verdict'])}</p>",
        "<ul>" + "".join(f"<li>{escape(reason)}</li>" for reason in reasons) + "</ul>",
        f'<p class="muted">comparison {escape(str(r["comparison_id"]))}, invocation '
        f"{escape(str(r['invocation_id']))}, {escape(str(r['created_at']))}; baseline run "
        f"{escape(str(b['run_id']))}, variant run {escape(str(v['run_id']))}, seed "
        f"{escape(str(b['seed']))}, device {escape(str(b['device']))}"
        f"{', quick' if b['quick'] else ''}</p>",
    ]
    if decision["underpowered"]:
        out.append(
            "<p><strong>Underpowered:</strong> "
            + escape("; ".join(decision["underpowered"]))
            + " — neither PROMOTE nor REJECT is supported by this much evidence.</p>"
        )
    out += ["<h3>Statistics</h3>", *_stats_table(r), "<h3>Training curves</h3>"]
    figure = curves_figure(r, curves)
    if figure is None:
        out.append('<p class="muted">no training curve recorded for either run</p>')
    else:
        quantities = " and ".join(sorted({c.label for c in _arm_curves(r, curves).values()}))
        out.append(_img(_png(figure), f"training curves of {r['experiment_id']}: {quantities}"))
    out += _no_curve_notes(r, curves)
    out += ["<h3>Cost</h3>", *_budget_table(r)]
    out += section_lines(r.get("sections", []))
    out += ["<h3>Gates</h3>", *_gate_table(r["gates"])]
    out.append("</section>")
    return out


def _stats_table(r: dict[str, Any]) -> list[str]:
    sv = r["statistical_validation"]
    fdr = sv["fdr_correction"]
    adjusted = dict(zip(fdr["metrics"], fdr["adjusted_p_values"], strict=True))
    head = (
        "metric",
        "n",
        "baseline",
        "variant",
        "Δ (mean paired)",
        "BCa CI",
        "test",
        "p",
        "adj. p",
        "d_z",
        "power",
    )
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for metric, ci in sv["bca_bootstrap"].items():
        test = sv["paired_tests"][metric]
        level = ci["confidence_level"]
        interval = f"[{_num(ci['lower'], '+.4f')}, {_num(ci['upper'], '+.4f')}]"
        if level is not None:
            interval = f"{level:.0%} {interval}"
        if ci["degenerate"]:
            interval += " (all differences equal)"
        cells = [
            escape(metric),
            _num(test["n"]),
            _num(r["baseline_metrics"].get(metric)),
            _num(r["variant_metrics"].get(metric)),
            _num(sv["paired_differences"][metric], "+.4f"),
            escape(interval),
            escape(str(test["test"])),
            _num(test["p_value"], ".3g"),
            _num(adjusted.get(metric), ".3g"),
            _num(sv["effect_sizes"][metric]["cohens_dz"], ".3f"),
            _power(sv["power_analysis"][metric]),
        ]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>" if i in (0, 6) else f'<td class="num">{c}</td>'
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    rows.append("</table>")
    rows.append(
        f'<p class="muted">BH-FDR family: {_num(fdr["family_size"])} hypotheses. '
        f"{escape(str(sv.get('ci_note', '')))}.</p>"
    )
    return rows


def _power(power: dict[str, Any]) -> str:
    cell = _num(power["power"], ".2f")
    if power.get("underpowered"):
        needed = power.get("n_needed")
        cell += " <strong>underpowered</strong>" + (f" (n ≥ {_num(needed)})" if needed else "")
    return cell


def _no_curve_notes(r: dict[str, Any], curves: Curves) -> list[str]:
    """Say why an arm draws no curve: its adapter was taken from another run (a borrowed
    arm trains nothing), or it logged no step while the other arm did."""
    drawn = _arm_curves(r, curves)
    notes = []
    for role in Role:
        side = r[f"{role}_metrics"]
        source = side.get("adapter_source_run_id")
        if role in drawn:
            continue
        if source is not None:
            why = f"adapter taken from run {source}, not trained here"
        elif drawn:
            why = "no steps recorded"
        else:
            continue  # neither arm has a curve: said above
        notes.append(f"{role} (run {side['run_id']}): {why}")
    return [f'<p class="muted">No curve for {escape("; ".join(notes))}.</p>'] if notes else []


def _budget_table(r: dict[str, Any]) -> list[str]:
    b, v, budget = r["baseline_metrics"], r["variant_metrics"], r["budget"]
    lines = [
        ("trainable parameters", "trainable_parameters", "param_ratio", ",d"),
        ("FLOPs / token", "flops_per_token", "flop_ratio", ",.0f"),
        ("latency p50 (ms)", "latency_p50_ms", "latency_ratio", ".2f"),
    ]
    rows = ["<table><tr><th>cost</th><th>baseline</th><th>variant</th><th>ratio</th></tr>"]
    for label, key, ratio, fmt in lines:
        interval = costs.latency_interval_text(budget) if ratio == "latency_ratio" else ""
        rows.append(
            f'<tr><td>{label}</td><td class="num">{_num(b.get(key), fmt)}</td>'
            f'<td class="num">{_num(v.get(key), fmt)}</td>'
            f'<td class="num">{_num(budget.get(ratio))}{interval}</td></tr>'
        )
    for label, base, var, ratio in costs.memory_rows(r):
        rows.append(
            f'<tr><td>{escape(label)}</td><td class="num">{base}</td>'
            f'<td class="num">{var}</td><td class="num">{ratio}</td></tr>'
        )
    rows.append("</table>")
    note = costs.latency_note(r)
    if note:
        rows.append(f'<p class="muted">{escape(note)}</p>')
    return rows


def _gate_table(gates: list[dict[str, Any]]) -> list[str]:
    head = ("gate", "metric", "result", "observed", "comparator", "threshold", "detail")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for g in gates:
        result = _RESULT[costs.gate_outcome(g)]
        rows.append(
            f"<tr><td>{escape(str(g['gate']))}</td><td>{escape(str(g['metric'] or ''))}</td>"
            f'<td>{result}</td><td class="num">{_num(g["observed"])}</td>'
            f"<td>{escape(str(g['comparator']))}</td>"
            f'<td class="num">{_num(g["threshold"])}</td>'
            f"<td>{escape(str(g['detail'] or ''))}</td></tr>"
        )
    rows.append("</table>")
    return rows


# -- small helpers --------------------------------------------------------------------

_RESULT = {
    GateOutcome.PASS: '<span class="pass">✓</span>',
    GateOutcome.FAIL: '<span class="fail">✗</span>',
    GateOutcome.INCONCLUSIVE: '<span class="inconclusive">? inconclusive</span>',
}


def _verdict(verdict: str) -> str:
    return f'<span class="verdict {verdict_class(verdict)}">{escape(verdict)}</span>'


def _num(value: Any, fmt: str = ".4f") -> str:
    """A number formatted for a table cell (already HTML-safe); "n/a" for a missing one."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and fmt == ".4f":
        return f"{value:,}"
    try:
        return escape(format(value, fmt))
    except (TypeError, ValueError):
        return escape(str(value))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


# -- plots ----------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    """Encode and release a figure; no Software/date metadata, so output is reproducible."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    finally:
        fig.clear()
    return buffer.getvalue()


def _arm_curves(r: dict[str, Any], curves: Curves) -> dict[str, RunCurve]:
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
    arms = _arm_curves(r, curves)
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
