"""The router's own measurements as labelled rows, for every report format to render.

One list of (what, baseline, variant) strings so markdown, html and the terminal verdict
show the same figures under the same names; empty when neither arm is a router.
"""

from __future__ import annotations

from typing import Any


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


def router_rows(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, baseline, variant) rows; a non-router arm shows "-"."""
    base = record["baseline_metrics"].get("router")
    var = record["variant_metrics"].get("router")
    if not base and not var:
        return []
    return [(label, show(base) if base else "-", show(var) if var else "-") for label, show in ROWS]
