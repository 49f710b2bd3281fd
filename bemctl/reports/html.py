"""HTML rendering of report records: one self-contained file to mail or attach to a notebook.

Everything is inline (CSS, plots as base64 PNG `data:` URIs) so the file opens anywhere,
offline, and cannot break when moved. Plots use matplotlib's object API with the Agg
canvas, never pyplot: no display is needed and no figure is left registered globally.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bemctl.reports.router_summary import router_rows

Curves = Mapping[int, Sequence[tuple[int, float]]]

# The default style, whatever the user's matplotlibrc says, so the same data draws the
# same pixels (and text.usetex or odd fonts cannot break a report).
_STYLE: list[Any] = ["default", {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}]
_BASELINE, _VARIANT = "#4c72b0", "#dd8452"

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
    if verdict.startswith("PROMOTE"):
        return "promote"
    if verdict.startswith("REJECT"):
        return "reject"
    return "inconclusive"


def render_html(records: list[dict[str, Any]], curves: Curves) -> str:
    """The whole report: summary, forest plot, then one section per experiment.

    `curves` maps run_id -> [(step, loss), ...] (see `curves.load_curves`); runs missing
    from it are drawn as having no curve.
    """
    forest = _forest_png(records)
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
            "multiplicity). Green: interval above 0, red: below 0, grey: contains 0.</p>",
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
    png = _curves_png(r, curves)
    if png is None:
        out.append('<p class="muted">no loss curve recorded for either run</p>')
    else:
        out.append(_img(png, f"training loss of {r['experiment_id']}: baseline vs variant"))
    out += ["<h3>Cost</h3>", *_budget_table(r)]
    router = router_rows(r)
    if router:
        out.append("<h3>Router</h3>")
        out.append("<table><tr><th>router</th><th>baseline</th><th>variant</th></tr>")
        out += [
            f"<tr><td>{escape(label)}</td><td>{escape(base)}</td><td>{escape(var)}</td></tr>"
            for label, base, var in router
        ]
        out.append("</table>")
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
            _num(sv["power_analysis"][metric]["power"], ".2f"),
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


def _budget_table(r: dict[str, Any]) -> list[str]:
    b, v, budget = r["baseline_metrics"], r["variant_metrics"], r["budget"]
    lines = [
        ("trainable parameters", "trainable_parameters", "param_ratio", ",d"),
        ("FLOPs / token", "flops_per_token", "flop_ratio", ",.0f"),
        ("latency p50 (ms)", "latency_p50_ms", "latency_ratio", ".2f"),
        ("peak memory (bytes)", "peak_memory_bytes", "memory_ratio", ",d"),
    ]
    rows = ["<table><tr><th>cost</th><th>baseline</th><th>variant</th><th>ratio</th></tr>"]
    for label, key, ratio, fmt in lines:
        rows.append(
            f'<tr><td>{label}</td><td class="num">{_num(b.get(key), fmt)}</td>'
            f'<td class="num">{_num(v.get(key), fmt)}</td>'
            f'<td class="num">{_num(budget.get(ratio))}</td></tr>'
        )
    rows.append("</table>")
    return rows


def _gate_table(gates: list[dict[str, Any]]) -> list[str]:
    head = ("gate", "metric", "result", "observed", "comparator", "threshold", "detail")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for g in gates:
        result = '<span class="pass">✓</span>' if g["passed"] else '<span class="fail">✗</span>'
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


def _curves_png(r: dict[str, Any], curves: Curves) -> bytes | None:
    """Loss vs step, baseline and variant on one axis; None when neither run logged a step."""
    arms = [
        ("baseline", r["baseline_metrics"]["run_id"], _BASELINE),
        ("variant", r["variant_metrics"]["run_id"], _VARIANT),
    ]
    drawn = [(label, run_id, color, curves.get(run_id) or []) for label, run_id, color in arms]
    if not any(points for *_, points in drawn):
        return None
    with matplotlib.style.context(_STYLE):
        fig = Figure(figsize=(7, 3.2))
        ax = fig.add_subplot()
        for label, run_id, color, points in drawn:
            if points:
                steps, losses = zip(*points, strict=True)
                marker = "o" if len(points) <= 30 else None
                name = f"{label} (run {run_id})"
                ax.plot(steps, losses, color=color, marker=marker, ms=3, label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title(str(r["experiment_id"]), parse_math=False)
        legend = ax.legend()
        for text in legend.get_texts():
            text.set_parse_math(False)
        fig.tight_layout()
        return _png(fig)


def _forest_rows(records: list[dict[str, Any]]) -> list[tuple[str, float, float, float]]:
    rows = []
    for r in records:
        for metric, ci in r["statistical_validation"]["bca_bootstrap"].items():
            if None in (ci["estimate"], ci["lower"], ci["upper"]):
                continue
            label = f"{r['experiment_id']} · {metric}"
            rows.append((label, ci["estimate"], ci["lower"], ci["upper"]))
    return rows


def _forest_png(records: list[dict[str, Any]]) -> bytes | None:
    """One row per (experiment, metric): point at Δ, bar for its CI, a line at 0."""
    rows = _forest_rows(records)
    if not rows:
        return None
    with matplotlib.style.context(_STYLE):
        fig = Figure(figsize=(7, 1.0 + 0.35 * len(rows)))
        ax = fig.add_subplot()
        ys = list(range(len(rows), 0, -1))  # first row on top
        for y, (_, estimate, low, high) in zip(ys, rows, strict=True):
            color = "#2e9e2e" if low > 0 else "#c93030" if high < 0 else "#555555"
            ax.hlines(y, low, high, color=color, linewidth=2)
            ax.plot([estimate], [y], "o", color=color, ms=5)
        ax.axvline(0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yticks(ys, [label for label, *_ in rows], parse_math=False)
        ax.set_ylim(0.4, len(rows) + 0.6)
        ax.set_xlabel("mean paired difference (variant − baseline)")
        ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return _png(fig)
