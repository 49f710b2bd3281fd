"""Acceptance gates: every check a PROMOTE needs, each with its observed value and threshold.

A verdict is only as useful as its reasons, so every gate is recorded (passed or not) and a
REJECT names every gate that failed, not just the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    gate: str
    metric: str | None
    passed: bool
    observed: float | None
    threshold: float | None
    comparator: str
    detail: str


@dataclass(frozen=True)
class GateInputs:
    param_ratio: float
    flop_ratio: float
    latency_ratio: float | None
    memory_ratio: float | None
    tolerance: float
    latency_budget: float
    memory_budget: float
    kv_hit_rate: float | None = None  # variant's share of cached K/V entries still valid
    kv_hit_rate_baseline: float | None = None
    router: dict | None = None  # the router's own measurements (engine.router.gate_measures)


@dataclass(frozen=True)
class MetricEvidence:
    metric: str
    mean_diff: float
    ci_low: float
    p_adjusted: float


@dataclass(frozen=True)
class GatePolicy:
    min_improvement: float
    alpha: float
    statistical_significance: bool = True
    ci_lower_bound_positive: bool = True
    performance_gates_pass: bool = True


def _within(ratio: float, tol: float) -> bool:
    return 1 - tol <= ratio <= 1 + tol


def evaluate_gates(
    inputs: GateInputs, evidence: Sequence[MetricEvidence], policy: GatePolicy
) -> list[Gate]:
    tol = inputs.tolerance
    gates = [
        Gate(
            "budget_parity_params",
            None,
            _within(inputs.param_ratio, tol),
            inputs.param_ratio,
            tol,
            "within 1±",
            "trainable parameters, variant / baseline",
        ),
        Gate(
            "budget_parity_flops",
            None,
            _within(inputs.flop_ratio, tol),
            inputs.flop_ratio,
            tol,
            "within 1±",
            "forward FLOPs per token, variant / baseline",
        ),
    ]
    if policy.performance_gates_pass:
        for name, ratio, budget, what in (
            ("latency", inputs.latency_ratio, inputs.latency_budget, "p50 latency"),
            ("memory", inputs.memory_ratio, inputs.memory_budget, "peak memory"),
        ):
            ok = ratio is not None and ratio <= budget
            detail = f"{what}, variant / baseline" if ratio is not None else f"{what} not measured"
            gates.append(Gate(name, None, ok, ratio, budget, "<=", detail))
        if inputs.kv_hit_rate is not None and inputs.kv_hit_rate_baseline is not None:
            gates.append(
                Gate(
                    "kv_hit_rate",
                    None,
                    inputs.kv_hit_rate >= inputs.kv_hit_rate_baseline,
                    inputs.kv_hit_rate,
                    inputs.kv_hit_rate_baseline,
                    ">=",
                    "cached K/V entries still valid after decoding (threshold: baseline's)",
                )
            )
    if inputs.router is not None:
        gates.extend(router_gates(inputs.router))
    for ev in evidence:
        if policy.ci_lower_bound_positive:
            gates.append(
                Gate(
                    "ci_lower_bound_positive",
                    ev.metric,
                    ev.ci_low > 0,
                    ev.ci_low,
                    0.0,
                    ">",
                    "BCa lower bound of the mean paired difference",
                )
            )
        if policy.statistical_significance:
            gates.append(
                Gate(
                    "statistical_significance",
                    ev.metric,
                    ev.p_adjusted < policy.alpha,
                    ev.p_adjusted,
                    policy.alpha,
                    "<",
                    "BH-adjusted p-value",
                )
            )
        gates.append(
            Gate(
                "min_improvement",
                ev.metric,
                ev.mean_diff >= policy.min_improvement,
                ev.mean_diff,
                policy.min_improvement,
                ">=",
                "mean paired difference, raw metric points",
            )
        )
    return gates


ROUTER_MAX_PLAN_LENGTH = 3.0
ROUTER_MAX_SWITCH_RATE = 0.20


def router_gates(router: dict) -> list[Gate]:
    """The agentic router's own gates: short plans, rare switches, and a score that does not
    rise when its evidence is degraded (the KV-cache gate is common to every variant)."""
    gates = [
        Gate(
            "plan_length",
            None,
            router["plan_length"] <= ROUTER_MAX_PLAN_LENGTH,
            router["plan_length"],
            ROUTER_MAX_PLAN_LENGTH,
            "<=",
            f"mean actions per evaluated sequence ({router['n_sequences']} sequences)",
        ),
        Gate(
            "switch_rate",
            None,
            router["switch_rate"] <= ROUTER_MAX_SWITCH_RATE,
            router["switch_rate"],
            ROUTER_MAX_SWITCH_RATE,
            "<=",
            "expert switches per chunk boundary, pooled over evaluated sequences",
        ),
    ]
    mono = router.get("monotonicity")
    if mono is not None:
        means = mono["means"]
        gates.append(
            Gate(
                "evidence_monotonicity",
                None,
                bool(mono["monotone"]),
                mono["max_rise"],
                mono["max_rise_margin"],
                "<=",
                f"score rise when evidence is degraded, vs its 95% noise margin (clean "
                f"{means['clean']:.3f}, half-shuffled {means['half_shuffled']:.3f}, "
                f"shuffled {means['shuffled']:.3f}; n={mono['n']})",
            )
        )
    return gates


ROUTER_GATES = ("plan_length", "switch_rate", "evidence_monotonicity")
COST_GATES = (
    "budget_parity_params",
    "budget_parity_flops",
    "latency",
    "memory",
    "kv_hit_rate",
    *ROUTER_GATES,
)
INCONCLUSIVE = "INCONCLUSIVE (underpowered)"


def _reason(g: Gate) -> str:
    label = g.gate if g.metric is None else f"{g.gate}[{g.metric}]"
    if g.gate.startswith("budget_parity"):
        label = f"budget parity: {label}"
    observed = "n/a" if g.observed is None else f"{g.observed:.4g}"
    bound = f"{g.comparator} {g.threshold:.4g}" if g.threshold is not None else ""
    return f"{label} (observed {observed}, needs {bound})".replace("within 1± ", "within 1±")


def verdict(gates: Sequence[Gate], underpowered: Sequence[str] = ()) -> tuple[str, list[str]]:
    """PROMOTE only when every gate passed; REJECT names every failed gate.

    An underpowered comparison (too few examples or discordant pairs to trust either answer)
    is INCONCLUSIVE instead, unless a cost gate failed: more data cannot fix a budget, latency
    or memory violation, so that stays a REJECT.
    """
    failed = [g for g in gates if not g.passed]
    reasons = [_reason(g) for g in failed]
    if any(g.gate in COST_GATES for g in failed):
        return "REJECT", reasons
    if underpowered:
        return INCONCLUSIVE, [f"underpowered: {u}" for u in underpowered] + reasons
    return ("PROMOTE" if not reasons else "REJECT"), reasons
