"""How dynamic a run's routing was and how far its gates moved, for every report format.

Reads two parts of a run's `variant_stats` (engine.evaluation.dynamics): `dynamics` (V1's
masks, the router's actions: distinct ones used, their entropy, the share of tokens under the
most common one, for all / prompt / generated tokens) and `gate_movement` (V1's and V2's
head-group gates: mean |g - 1| per layer and group; V2 also how many answers change when its
gates are forced to identity). One list of (what, baseline, variant) rows plus plain-text
notes, so markdown, html and the terminal say the same thing; a routing that used one
mask/action for >= 99% of tokens is called static, gates that change no answer a no-op.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from store.states import Role

PARTS = ("all", "prompt", "generated")


def run_fields(variant_stats_json: str | None) -> dict[str, Any]:
    """The report record's `dynamics` and `gate_movement` of one run (None when absent)."""
    stats = json.loads(variant_stats_json) if variant_stats_json else {}
    stats = stats if isinstance(stats, dict) else {}
    return {"dynamics": stats.get("dynamics"), "gate_movement": stats.get("gate_movement")}


def _parts(d: dict[str, Any], key: str, fmt: str) -> str:
    values = []
    for part in PARTS:
        value = d[part][key]
        values.append("-" if value is None else format(value, fmt))
    return " / ".join(values)


def _tokens(d: dict[str, Any]) -> str:
    return (
        f"{d['all']['tokens']:,} ({d['prompt']['tokens']:,} prompt, "
        f"{d['generated']['tokens']:,} generated; {d['sequences']} sequences)"
    )


def _static(d: dict[str, Any]) -> str:
    return f"{'STATIC' if d['static'] else 'dynamic'} (static = one {d['unit']} ≥ " + (
        f"{d['static_share']:.0%} of tokens)"
    )


DYNAMICS_ROWS = (
    ("tokens routed", _tokens),
    ("distinct {unit}s used (all / prompt / generated)", lambda d: _parts(d, "distinct", ",")),
    ("entropy, bits (all / prompt / generated)", lambda d: _parts(d, "entropy_bits", ".3f")),
    (
        "share of tokens under the most common {unit} (all / prompt / generated)",
        lambda d: _parts(d, "top_share", ".4f"),
    ),
    ("routing", _static),
)


def _per_layer(g: dict[str, Any]) -> str:
    return "; ".join(
        f"L{i}: " + " ".join(f"{x:.3f}" for x in row) for i, row in enumerate(g["mean_abs_dev"])
    )


def _changed(g: dict[str, Any]) -> str:
    em = g.get("exact_match_changed")
    tail = f", exact match changed on {em}" if em is not None else ""
    return f"{g['answers_changed']}/{g['prompts']} ({g['share_changed']:.1%}){tail}"


GATE_ROWS = (
    ("gates measured over", lambda g: f"{g['n']:,} {g.get('unit', 'prompts')}"),
    (
        "head-group gates: mean abs(g − 1) (max)",
        lambda g: f"{g['overall']:.4f} ({g['max_abs_dev']:.4f})",
    ),
    ("mean abs(g − 1) per layer (one value per head group)", _per_layer),
)


def _focus(g: dict[str, Any]) -> str:
    rows = g.get("focus_strength")
    if not rows:
        return "n/a"
    return "; ".join(f"L{i}: " + " ".join(f"{x:+.3f}" for x in row) for i, row in enumerate(rows))


ANSWER_ROWS = (
    ("evidence focus s per layer (one value per head group)", _focus),
    ("answers changed with the shaping off (gates 1, focus 0)", _changed),
    ("re-ranker puts the relevant passage first", lambda g: _fmt(g.get("reranker_top1"), ".3f")),
)


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _arm(record: dict[str, Any], role: str, key: str) -> dict[str, Any] | None:
    value = record[f"{role}_metrics"].get(key)
    return value if isinstance(value, dict) else None


def dynamics_rows(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, baseline, variant) rows; "-" for an arm without the measurement."""
    rows: list[tuple[str, str, str]] = []
    base, var = _arm(record, Role.BASELINE, "dynamics"), _arm(record, Role.VARIANT, "dynamics")
    if base or var:
        unit = (var or base or {}).get("unit", "routing")
        for label, show in DYNAMICS_ROWS:
            rows.append(
                (label.format(unit=unit), show(base) if base else "-", show(var) if var else "-")
            )
    base = _arm(record, Role.BASELINE, "gate_movement")
    var = _arm(record, Role.VARIANT, "gate_movement")
    measured = [g for g in (base, var) if g and g.get("n")]
    if measured:
        for label, show in GATE_ROWS:
            rows.append(
                (
                    label,
                    show(base) if base and base.get("n") else "-",
                    show(var) if var and var.get("n") else "-",
                )
            )
    if any(g and "answers_changed" in g for g in (base, var)):
        for label, show in ANSWER_ROWS:
            rows.append(
                (
                    label,
                    show(base) if base and "answers_changed" in base else "-",
                    show(var) if var and "answers_changed" in var else "-",
                )
            )
    return rows


def dynamics_notes(record: dict[str, Any]) -> list[str]:
    """Sentences a reader must not miss: static routing, no-op gates."""
    notes = []
    for role in (Role.VARIANT, Role.BASELINE):
        d = _arm(record, role, "dynamics")
        if d and d["static"]:
            notes.append(
                f"Static routing ({role}): one {d['unit']} for {d['all']['top_share']:.2%} of "
                f"its {d['all']['tokens']:,} routed tokens (threshold {d['static_share']:.0%}); "
                f"in effect a static adapter, so its verdict says nothing about dynamic routing."
            )
        g = _arm(record, role, "gate_movement")
        if g and g.get("no_op"):
            notes.append(
                f"No-op ({role}): switching its gate shaping off (gates 1, focus 0) changes none "
                f"of {g['prompts']} answers (mean |g − 1| {_fmt(g.get('overall'), '.4f')}); the "
                f"comparison measures its static LoRA part only, not gate shaping."
            )
    return notes


def markdown_lines(record: dict[str, Any]) -> list[str]:
    """The report's "Routing dynamics" section in Markdown (nothing when there is none)."""
    rows = dynamics_rows(record)
    if not rows:
        return []
    out = ["", "| routing dynamics | baseline | variant |", "|---|---|---|"]
    out += [f"| {label} | {base} | {var} |" for label, base, var in rows]
    out += [line for note in dynamics_notes(record) for line in ("", f"**{note}**")]
    return out


def html_lines(record: dict[str, Any]) -> list[str]:
    """The report's "Routing dynamics" section in HTML (nothing when there is none)."""
    rows = dynamics_rows(record)
    if not rows:
        return []
    out = [
        "<h3>Routing dynamics</h3>",
        "<table><tr><th>routing dynamics</th><th>baseline</th><th>variant</th></tr>",
    ]
    out += [
        f"<tr><td>{escape(label)}</td><td>{escape(base)}</td><td>{escape(var)}</td></tr>"
        for label, base, var in rows
    ]
    out.append("</table>")
    out += [f"<p><strong>{escape(note)}</strong></p>" for note in dynamics_notes(record)]
    return out
