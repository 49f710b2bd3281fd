"""The A/B protocol's sections: the router's measurements, routing dynamics, gate movement.

Built from the two arms' `variant_stats` (what each adapter measured about itself:
`engine.variants.router.gate_measures`, `engine.evaluation.dynamics`) when the experiment
finishes, and stored with the comparison, so every view shows the same figures under the same
names. A routing that used one mask/action for >= 99% of its tokens is called static, gates
that change no answer a no-op: a reader must not take such a variant for a dynamic one.
"""

from __future__ import annotations

from typing import Any

from engine.sections import Section

Stats = dict[str, Any] | None

PARTS = ("all", "prompt", "generated")


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


def _plans(s: dict[str, Any]) -> str:
    return f"{s['plan_length']:.2f} (cap {s['max_plan_length']}, {s['n_sequences']} sequences)"


def _share(s: dict[str, Any]) -> str:
    return " / ".join(f"{x:.2f}" for x in s["expert_share"])


def _projections(s: dict[str, Any]) -> str:
    p = s["projections"]
    return (
        f"{p['projected']}/{p['compositions']} projected (max ‖ΔW‖_F {p['max_norm']:.3g}, "
        f"tau {p['tau']:.3g})"
    )


def _evidence(s: dict[str, Any]) -> str:
    m = s.get("monotonicity")
    if m is None:
        return "not measured"
    means = m["means"]
    return (
        f"{means['clean']:.3f} ≥ {means['half_shuffled']:.3f} ≥ {means['shuffled']:.3f}"
        f" ({'monotone' if m['monotone'] else 'RISES'}, n={m['n']})"
    )


ROWS = (
    ("mean plan length", _plans),
    ("switch rate (per chunk boundary)", lambda s: f"{s['switch_rate']:.3f}"),
    ("switches vetoed by hysteresis", lambda s: str(s["vetoed_switches"])),
    ("share of chunks per expert", _share),
    ("expert overlap (mean off-diagonal)", lambda s: f"{s['expert_overlap']:.3f}"),
    ("trust-region projections", _projections),
    ("score: clean ≥ half-shuffled ≥ shuffled evidence", _evidence),
)


def _part_of(stats: Stats, key: str) -> dict[str, Any] | None:
    value = (stats or {}).get(key) if isinstance(stats, dict) else None
    return value if isinstance(value, dict) else None


def router_section(baseline: Stats, variant: Stats) -> Section | None:
    """(label, baseline, variant) rows of the router's measurements; "-" for a non-router."""
    base = baseline if isinstance(baseline, dict) and baseline.get("router") else None
    var = variant if isinstance(variant, dict) and variant.get("router") else None
    if not base and not var:
        return None
    rows = tuple(
        (label, show(base) if base else "-", show(var) if var else "-") for label, show in ROWS
    )
    return Section(
        key="router",
        title="Router",
        columns=("router", "baseline", "variant"),
        rows=rows,
        brief=tuple(f"router: {label}: {value}" for label, _, value in rows if value != "-"),
    )


def dynamics_rows(baseline: Stats, variant: Stats) -> list[tuple[str, str, str]]:
    """(label, baseline, variant) rows; "-" for an arm without the measurement."""
    rows: list[tuple[str, str, str]] = []
    base, var = _part_of(baseline, "dynamics"), _part_of(variant, "dynamics")
    if base or var:
        unit = (var or base or {}).get("unit", "routing")
        for label, show in DYNAMICS_ROWS:
            rows.append(
                (label.format(unit=unit), show(base) if base else "-", show(var) if var else "-")
            )
    base, var = _part_of(baseline, "gate_movement"), _part_of(variant, "gate_movement")
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


def dynamics_notes(baseline: Stats, variant: Stats) -> list[str]:
    """Sentences a reader must not miss: static routing, no-op gates."""
    notes = []
    for role, stats in (("variant", variant), ("baseline", baseline)):
        d = _part_of(stats, "dynamics")
        if d and d["static"]:
            notes.append(
                f"Static routing ({role}): one {d['unit']} for {d['all']['top_share']:.2%} of "
                f"its {d['all']['tokens']:,} routed tokens (threshold {d['static_share']:.0%}); "
                f"in effect a static adapter, so its verdict says nothing about dynamic routing."
            )
        g = _part_of(stats, "gate_movement")
        if g and g.get("no_op"):
            notes.append(
                f"No-op ({role}): switching its gate shaping off (gates 1, focus 0) changes none "
                f"of {g['prompts']} answers (mean |g − 1| {_fmt(g.get('overall'), '.4f')}); the "
                f"comparison measures its static LoRA part only, not gate shaping."
            )
    return notes


def dynamics_section(baseline: Stats, variant: Stats) -> Section | None:
    rows = dynamics_rows(baseline, variant)
    if not rows:
        return None
    return Section(
        key="dynamics",
        title="Routing dynamics",
        columns=("routing dynamics", "baseline", "variant"),
        rows=tuple(rows),
        notes=tuple(dynamics_notes(baseline, variant)),
    )


def ab_sections(baseline: Stats, variant: Stats) -> list[Section]:
    """Every section the two arms' own measurements call for (none for two static LoRAs)."""
    built = (router_section(baseline, variant), dynamics_section(baseline, variant))
    return [s for s in built if s is not None]
