"""HTML rendering of report records: one self-contained file to mail or attach to a notebook.

Everything is inline (CSS, plots as base64 PNG `data:` URIs) so the file opens anywhere,
offline, and cannot break when moved. This module assembles the page (summary, tables,
notes); the plots are drawn in `bemctl.reports.html_figures`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bemctl.reports import costs
from bemctl.reports.html_figures import (
    Curves,
    arm_curves,
    curves_figure,
    forest_figure,
    img,
    png,
    stream_figure,
)
from bemctl.reports.sections_view import html_lines as section_lines
from store.states import GateOutcome, Role, Verdict

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
    forest = None if figure is None else png(figure)
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
            img(forest, "forest plot of paired differences with confidence intervals"),
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
        quantities = " and ".join(sorted({c.label for c in arm_curves(r, curves).values()}))
        out.append(img(png(figure), f"training curves of {r['experiment_id']}: {quantities}"))
    out += _no_curve_notes(r, curves)
    out += _stream(r)
    out += ["<h3>Cost</h3>", *_budget_table(r)]
    out += section_lines(r.get("sections", []))
    out += ["<h3>Gates</h3>", *_gate_table(r["gates"])]
    out.append("</section>")
    return out


def _stream(r: dict[str, Any]) -> list[str]:
    """An online variant's stream timeline; nothing for a comparison without one (A/B)."""
    figure = stream_figure(r)
    if figure is None:
        return []
    run_id = r["stream"]["run_id"]
    return [
        "<h3>Stream timeline</h3>",
        f'<p class="muted">Mean exact match per live batch of the variant run '
        f"{escape(str(run_id))}: the weights that served the batch, the shadow and the "
        "deployed adapter (dotted). Vertical lines: promotions (green), rollbacks (red, "
        "dashed), drift alarms (purple, dotted).</p>",
        img(
            png(figure),
            f"stream timeline of {r['experiment_id']}: serving, shadow and deployed exact "
            "match per live batch, with promotions, rollbacks and drift alarms",
        ),
    ]


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
    drawn = arm_curves(r, curves)
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
