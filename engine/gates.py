"""Acceptance gates: every check a PROMOTE needs, each with its observed value and threshold.

A verdict is only as useful as its reasons, so every gate is recorded (passed or not) and a
REJECT names every gate that failed, not just the first. A gate has three outcomes: pass,
fail, and inconclusive - a cost gate whose measured interval still straddles its budget
after the capped number of rounds; that makes the verdict INCONCLUSIVE (cost), never a
silent REJECT.

Direction: a significantly *worse* variant never PROMOTEs, whatever the spec's switches say:
the significance gate needs the improvement to point the right way, and every metric gets a
harm guard (`no_significant_harm`) - or, where the spec sets a non-inferiority margin, the
non-inferiority gate (the CI's lower bound above -margin), which is the harm guard that
tolerates a bounded loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from store.states import GateOutcome, Verdict


@dataclass(frozen=True)
class Gate:
    gate: str
    metric: str | None
    passed: bool
    observed: float | None
    threshold: float | None
    comparator: str
    detail: str
    inconclusive: bool = False  # the measurement could not decide (never also passed)

    @property
    def outcome(self) -> GateOutcome:
        if self.inconclusive:
            return GateOutcome.INCONCLUSIVE
        return GateOutcome.PASS if self.passed else GateOutcome.FAIL


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
    router: dict | None = None  # the router's own measurements (its gate_measures)
    latency_interval: tuple[float, float] | None = None  # the p50 ratio's bootstrap interval
    latency_rounds: int | None = None
    memory_detail: str | None = None  # which phase's ratio `memory_ratio` is, and both


@dataclass(frozen=True)
class MetricEvidence:
    metric: str
    mean_diff: float
    ci_low: float
    p_adjusted: float
    identical_to: str | None = None  # repeats that metric's differences: no gates of its own


@dataclass(frozen=True)
class GatePolicy:
    min_improvement: float
    alpha: float
    statistical_significance: bool = True
    ci_lower_bound_positive: bool = True
    performance_gates_pass: bool = True
    non_inferiority_margin: dict[str, float] = field(default_factory=dict)  # metric -> margin


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
        gates.append(latency_gate(inputs))
        ratio = inputs.memory_ratio
        gates.append(
            Gate(
                "memory",
                None,
                ratio is not None and ratio <= inputs.memory_budget,
                ratio,
                inputs.memory_budget,
                "<=",
                (inputs.memory_detail or "peak tensor memory, variant / baseline")
                if ratio is not None
                else "peak memory not measured",
            )
        )
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
        if ev.identical_to is not None:
            continue  # its twin's gates decide: the same evidence must not count twice
        margin = policy.non_inferiority_margin.get(ev.metric)
        if margin is not None:
            gates.append(
                Gate(
                    "non_inferiority",
                    ev.metric,
                    ev.ci_low > -margin,
                    ev.ci_low,
                    -margin,
                    ">",
                    f"BCa lower bound of the mean paired difference, margin {margin:g}",
                )
            )
        else:
            worse = ev.p_adjusted <= policy.alpha and ev.mean_diff < 0
            gates.append(
                Gate(
                    "no_significant_harm",
                    ev.metric,
                    not worse,
                    ev.p_adjusted if ev.mean_diff < 0 else None,
                    policy.alpha,
                    ">",
                    "significantly worse than the baseline (BH-adjusted p of a negative "
                    "difference) fails, whatever the other gates say",
                )
            )
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
                    ev.p_adjusted <= policy.alpha and ev.mean_diff > 0,
                    ev.p_adjusted,
                    policy.alpha,
                    "<=",
                    "BH-adjusted p-value of an improvement"
                    if ev.mean_diff > 0
                    else "BH-adjusted p-value; the difference is not an improvement",
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


def latency_gate(inputs: GateInputs) -> Gate:
    """PASS when the p50 ratio's interval lies at or below the budget, FAIL when above it,
    inconclusive when it straddles (after the measurement extended its rounds to the cap).
    Without an interval (a point reading) the point decides."""
    ratio, budget = inputs.latency_ratio, inputs.latency_budget
    if ratio is None:
        return Gate("latency", None, False, None, budget, "<=", "p50 latency not measured")
    if inputs.latency_interval is None:
        return Gate(
            "latency", None, ratio <= budget, ratio, budget, "<=", "p50 latency, variant / baseline"
        )
    low, high = inputs.latency_interval
    rounds = f", {inputs.latency_rounds} rounds" if inputs.latency_rounds else ""
    detail = f"p50 latency, variant / baseline; 95% interval [{low:.3f}, {high:.3f}]{rounds}"
    if low <= budget < high:
        return Gate(
            "latency",
            None,
            False,
            ratio,
            budget,
            "<=",
            detail + ": straddles the budget, cannot decide",
            inconclusive=True,
        )
    return Gate("latency", None, high <= budget, ratio, budget, "<=", detail)


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
# the names older callers (and tests) import
INCONCLUSIVE = Verdict.INCONCLUSIVE_UNDERPOWERED
INCONCLUSIVE_COST = Verdict.INCONCLUSIVE_COST


def _reason(g: Gate) -> str:
    label = g.gate if g.metric is None else f"{g.gate}[{g.metric}]"
    if g.gate.startswith("budget_parity"):
        label = f"budget parity: {label}"
    observed = "n/a" if g.observed is None else f"{g.observed:.4g}"
    bound = f"{g.comparator} {g.threshold:.4g}" if g.threshold is not None else ""
    if g.inconclusive:
        return f"{label} inconclusive ({g.detail})"
    return f"{label} (observed {observed}, needs {bound})".replace("within 1± ", "within 1±")


def verdict(gates: Sequence[Gate], underpowered: Sequence[str] = ()) -> tuple[Verdict, list[str]]:
    """PROMOTE only when every gate passed; REJECT names every failed gate.

    In order: a failed cost gate REJECTs (more data cannot fix a budget, latency or memory
    violation); an underpowered comparison (too few examples or discordant pairs to trust
    either answer) is INCONCLUSIVE (underpowered); any other failed gate REJECTs; a cost gate
    that could not decide makes it INCONCLUSIVE (cost).
    """
    failed = [g for g in gates if g.outcome == GateOutcome.FAIL]
    undecided = [g for g in gates if g.outcome == GateOutcome.INCONCLUSIVE]
    reasons = [_reason(g) for g in failed] + [_reason(g) for g in undecided]
    if any(g.gate in COST_GATES for g in failed):
        return Verdict.REJECT, reasons
    if underpowered:
        return Verdict.INCONCLUSIVE_UNDERPOWERED, [
            f"underpowered: {u}" for u in underpowered
        ] + reasons
    if failed:
        return Verdict.REJECT, reasons
    if undecided:
        return Verdict.INCONCLUSIVE_COST, reasons
    return Verdict.PROMOTE, reasons
