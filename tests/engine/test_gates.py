"""Acceptance gates: every gate recorded, REJECT names every failed gate."""

from dataclasses import replace

from engine.gates import (
    ROUTER_GATES,
    GateInputs,
    GatePolicy,
    MetricEvidence,
    evaluate_gates,
    verdict,
)

PASSING_INPUTS = GateInputs(
    param_ratio=1.02,
    flop_ratio=0.99,
    latency_ratio=1.05,
    memory_ratio=1.01,
    tolerance=0.05,
    latency_budget=1.15,
    memory_budget=1.05,
)
POLICY = GatePolicy(min_improvement=0.005, alpha=0.05)
GOOD_EVIDENCE = [
    MetricEvidence("exact_match", mean_diff=0.03, ci_low=0.01, p_adjusted=0.001),
    MetricEvidence("f1", mean_diff=0.02, ci_low=0.004, p_adjusted=0.01),
]


def _by_name(gates):
    return {(g.gate, g.metric): g for g in gates}


def test_all_pass_promotes_without_reasons() -> None:
    gates = evaluate_gates(PASSING_INPUTS, GOOD_EVIDENCE, POLICY)
    assert all(g.passed for g in gates)
    names = set(_by_name(gates))
    assert names == {
        ("budget_parity_params", None),
        ("budget_parity_flops", None),
        ("latency", None),
        ("memory", None),
        ("no_significant_harm", "exact_match"),
        ("ci_lower_bound_positive", "exact_match"),
        ("statistical_significance", "exact_match"),
        ("min_improvement", "exact_match"),
        ("no_significant_harm", "f1"),
        ("ci_lower_bound_positive", "f1"),
        ("statistical_significance", "f1"),
        ("min_improvement", "f1"),
    }
    assert verdict(gates) == ("PROMOTE", [])


def test_param_ratio_outside_tolerance_rejects_with_budget_parity() -> None:
    inputs = replace(PASSING_INPUTS, param_ratio=1.08)
    gates = evaluate_gates(inputs, GOOD_EVIDENCE, POLICY)
    gate = _by_name(gates)[("budget_parity_params", None)]
    assert not gate.passed
    assert (gate.observed, gate.threshold) == (1.08, 0.05)
    decision, reasons = verdict(gates)
    assert decision == "REJECT"
    assert len(reasons) == 1
    assert "budget parity" in reasons[0]
    assert "budget_parity_params" in reasons[0]
    assert "1.08" in reasons[0]


def test_param_ratio_below_tolerance_also_fails() -> None:
    gates = evaluate_gates(replace(PASSING_INPUTS, param_ratio=0.9), GOOD_EVIDENCE, POLICY)
    assert not _by_name(gates)[("budget_parity_params", None)].passed


def test_tolerance_bounds_are_inclusive() -> None:
    inputs = replace(PASSING_INPUTS, param_ratio=1.05, flop_ratio=0.95)
    gates = _by_name(evaluate_gates(inputs, GOOD_EVIDENCE, POLICY))
    assert gates[("budget_parity_params", None)].passed
    assert gates[("budget_parity_flops", None)].passed


def test_latency_over_budget_names_latency() -> None:
    gates = evaluate_gates(replace(PASSING_INPUTS, latency_ratio=1.3), GOOD_EVIDENCE, POLICY)
    decision, reasons = verdict(gates)
    assert decision == "REJECT"
    assert len(reasons) == 1
    assert "latency" in reasons[0]
    assert "1.3" in reasons[0] and "1.15" in reasons[0]


def test_every_failed_gate_is_a_reason() -> None:
    inputs = replace(
        PASSING_INPUTS, param_ratio=1.2, flop_ratio=1.2, latency_ratio=2.0, memory_ratio=1.5
    )
    evidence = [
        MetricEvidence("exact_match", mean_diff=-0.01, ci_low=-0.05, p_adjusted=0.4),
        MetricEvidence("f1", mean_diff=0.02, ci_low=0.004, p_adjusted=0.01),
    ]
    gates = evaluate_gates(inputs, evidence, POLICY)
    failed = [g for g in gates if not g.passed]
    decision, reasons = verdict(gates)
    assert decision == "REJECT"
    assert len(failed) == 7
    assert len(reasons) == len(failed)
    joined = "\n".join(reasons)
    for needle in (
        "budget_parity_params",
        "budget_parity_flops",
        "latency",
        "memory",
        "ci_lower_bound_positive[exact_match]",
        "statistical_significance[exact_match]",
        "min_improvement[exact_match]",
    ):
        assert needle in joined, needle
    assert "[f1]" not in joined  # f1 passed every gate
    assert sum("budget parity" in r for r in reasons) == 2


def test_performance_gates_can_be_skipped() -> None:
    inputs = replace(PASSING_INPUTS, latency_ratio=3.0, memory_ratio=None)
    policy = replace(POLICY, performance_gates_pass=False)
    gates = evaluate_gates(inputs, GOOD_EVIDENCE, policy)
    names = {g.gate for g in gates}
    assert "latency" not in names and "memory" not in names
    assert {"budget_parity_params", "budget_parity_flops"} <= names
    assert verdict(gates) == ("PROMOTE", [])


def test_unmeasured_latency_fails() -> None:
    gates = evaluate_gates(replace(PASSING_INPUTS, latency_ratio=None), GOOD_EVIDENCE, POLICY)
    gate = _by_name(gates)[("latency", None)]
    assert not gate.passed
    assert gate.observed is None
    assert "not measured" in gate.detail
    decision, reasons = verdict(gates)
    assert decision == "REJECT"
    assert reasons == ["latency (observed n/a, needs <= 1.15)"]


def test_policy_switches_drop_statistical_gates() -> None:
    policy = replace(POLICY, statistical_significance=False, ci_lower_bound_positive=False)
    evidence = [MetricEvidence("f1", mean_diff=0.02, ci_low=-0.5, p_adjusted=0.9)]
    gates = evaluate_gates(PASSING_INPUTS, evidence, policy)
    assert {g.gate for g in gates if g.metric == "f1"} == {"min_improvement", "no_significant_harm"}
    assert verdict(gates)[0] == "PROMOTE"


def test_ci_bound_is_strict_and_significance_uses_the_fdr_rule() -> None:
    """One rule for BH: adjusted p <= alpha is a discovery, in FdrResult and in the gate."""
    from engine.stats import benjamini_hochberg

    evidence = [MetricEvidence("f1", mean_diff=0.005, ci_low=0.0, p_adjusted=0.05)]
    gates = _by_name(evaluate_gates(PASSING_INPUTS, evidence, POLICY))
    assert not gates[("ci_lower_bound_positive", "f1")].passed  # needs > 0
    assert gates[("statistical_significance", "f1")].passed  # adjusted p <= alpha
    assert bool(benjamini_hochberg([0.05], 0.05).rejected[0])  # the same p, the same call
    above = [MetricEvidence("f1", mean_diff=0.005, ci_low=0.0, p_adjusted=0.0500001)]
    assert not _by_name(evaluate_gates(PASSING_INPUTS, above, POLICY))[
        ("statistical_significance", "f1")
    ].passed
    assert gates[("min_improvement", "f1")].passed  # >= min_improvement


def test_a_significantly_worse_variant_never_promotes() -> None:
    """Whatever the switches say: with the CI and min-improvement gates off (a spec may turn
    them off, or set a negative min_improvement), a significant loss still fails."""
    worse = [MetricEvidence("f1", mean_diff=-0.05, ci_low=-0.08, p_adjusted=0.001)]
    for policy in (
        POLICY,
        replace(POLICY, ci_lower_bound_positive=False, min_improvement=-1.0),
        replace(
            POLICY,
            ci_lower_bound_positive=False,
            statistical_significance=False,
            min_improvement=-1,
        ),
    ):
        gates = _by_name(evaluate_gates(PASSING_INPUTS, worse, policy))
        assert not gates[("no_significant_harm", "f1")].passed
        if ("statistical_significance", "f1") in gates:
            significance = gates[("statistical_significance", "f1")]
            assert not significance.passed and "not an improvement" in significance.detail
        decision, reasons = verdict(list(gates.values()))
        assert decision == "REJECT"
        assert any(r.startswith("no_significant_harm[f1]") for r in reasons)
    # a loss that is not significant is not "harm": the other gates decide
    noisy = [MetricEvidence("f1", mean_diff=-0.01, ci_low=-0.04, p_adjusted=0.4)]
    gates = _by_name(evaluate_gates(PASSING_INPUTS, noisy, POLICY))
    assert gates[("no_significant_harm", "f1")].passed


def test_non_inferiority_margin_replaces_the_harm_guard() -> None:
    policy = replace(
        POLICY,
        statistical_significance=False,
        ci_lower_bound_positive=False,
        min_improvement=-1.0,
        non_inferiority_margin={"f1": 0.02},
    )
    within = [MetricEvidence("f1", mean_diff=-0.005, ci_low=-0.015, p_adjusted=0.01)]
    gates = _by_name(evaluate_gates(PASSING_INPUTS, within, policy))
    gate = gates[("non_inferiority", "f1")]
    assert gate.passed and gate.threshold == -0.02 and gate.comparator == ">"
    assert ("no_significant_harm", "f1") not in gates  # worse but within the margin: accepted
    assert verdict(list(gates.values()))[0] == "PROMOTE"
    beyond = [MetricEvidence("f1", mean_diff=-0.01, ci_low=-0.025, p_adjusted=0.3)]
    gates = evaluate_gates(PASSING_INPUTS, beyond, policy)
    decision, reasons = verdict(gates)
    assert decision == "REJECT"
    assert any(r.startswith("non_inferiority[f1]") for r in reasons)
    edge = [MetricEvidence("f1", mean_diff=0.0, ci_low=-0.02, p_adjusted=1.0)]
    assert not _by_name(evaluate_gates(PASSING_INPUTS, edge, policy))[
        ("non_inferiority", "f1")
    ].passed  # the bound must lie strictly above -margin


def test_a_metric_identical_to_another_gets_no_gates_of_its_own() -> None:
    evidence = [
        MetricEvidence("exact_match", mean_diff=0.03, ci_low=-0.01, p_adjusted=0.2),
        MetricEvidence(
            "f1", mean_diff=0.03, ci_low=-0.01, p_adjusted=0.2, identical_to="exact_match"
        ),
    ]
    gates = evaluate_gates(PASSING_INPUTS, evidence, POLICY)
    assert not [g for g in gates if g.metric == "f1"]
    _, reasons = verdict(gates)
    assert reasons and not any("[f1]" in r for r in reasons)  # each failure named once


def test_latency_gate_decides_on_its_interval() -> None:
    from engine.gates import INCONCLUSIVE_COST

    def latency(low, high, ratio=1.10):
        inputs = replace(
            PASSING_INPUTS, latency_ratio=ratio, latency_interval=(low, high), latency_rounds=160
        )
        gates = evaluate_gates(inputs, GOOD_EVIDENCE, POLICY)
        return _by_name(gates)[("latency", None)], verdict(gates)

    gate, (decision, _) = latency(1.02, 1.15)
    assert gate.outcome == "pass" and decision == "PROMOTE"  # the bound is inclusive
    gate, (decision, reasons) = latency(1.16, 1.30, ratio=1.2)
    assert gate.outcome == "fail" and decision == "REJECT"
    assert reasons == ["latency (observed 1.2, needs <= 1.15)"]
    gate, (decision, reasons) = latency(1.05, 1.25)
    assert gate.outcome == "inconclusive" and not gate.passed
    assert decision == INCONCLUSIVE_COST
    assert reasons[0].startswith("latency inconclusive (")
    assert "[1.050, 1.250]" in reasons[0] and "160 rounds" in reasons[0]
    # a quality failure is still a REJECT: the undecided latency is reported beside it
    bad = [MetricEvidence("f1", mean_diff=-0.05, ci_low=-0.08, p_adjusted=0.001)]
    inputs = replace(PASSING_INPUTS, latency_ratio=1.1, latency_interval=(1.05, 1.25))
    decision, reasons = verdict(evaluate_gates(inputs, bad, POLICY))
    assert decision == "REJECT" and any(r.startswith("latency inconclusive") for r in reasons)
    # underpowered wins over an undecided cost (more data is needed either way)
    decision, _ = verdict(evaluate_gates(inputs, GOOD_EVIDENCE, POLICY), ["f1: n=60 < 100"])
    assert decision.startswith("INCONCLUSIVE (underpowered)")


def test_underpowered_is_inconclusive_unless_a_cost_gate_failed() -> None:
    from engine.gates import INCONCLUSIVE

    inputs = GateInputs(1.0, 1.0, 1.0, 1.0, 0.05, 1.15, 1.05)
    weak = [MetricEvidence("f1", 0.01, -0.02, 0.4)]
    policy = GatePolicy(min_improvement=0.005, alpha=0.05)
    verdict_, reasons = verdict(evaluate_gates(inputs, weak, policy), ["f1: n=60 < 100"])
    assert verdict_ == INCONCLUSIVE
    assert reasons[0] == "underpowered: f1: n=60 < 100"
    assert any("ci_lower_bound_positive[f1]" in r for r in reasons)

    slow = GateInputs(1.0, 1.0, 1.3, 1.0, 0.05, 1.15, 1.05)
    verdict_, reasons = verdict(evaluate_gates(slow, weak, policy), ["f1: n=60 < 100"])
    assert verdict_ == "REJECT"  # more data cannot fix a latency violation
    assert any(r.startswith("latency") for r in reasons)

    strong = [MetricEvidence("f1", 0.05, 0.02, 0.001)]
    verdict_, _ = verdict(evaluate_gates(inputs, strong, policy), ["f1: n=60 < 100"])
    assert verdict_ == INCONCLUSIVE  # even a clear win on too little data is not a PROMOTE


def test_kv_hit_rate_gate_compares_with_the_baseline() -> None:
    policy = GatePolicy(min_improvement=0.0, alpha=0.05)
    ok = GateInputs(1.0, 1.0, 1.0, 1.0, 0.05, 1.15, 1.05, kv_hit_rate=1.0, kv_hit_rate_baseline=1.0)
    stale = GateInputs(
        1.0, 1.0, 1.0, 1.0, 0.05, 1.15, 1.05, kv_hit_rate=0.93, kv_hit_rate_baseline=1.0
    )
    [gate] = [g for g in evaluate_gates(ok, [], policy) if g.gate == "kv_hit_rate"]
    assert gate.passed and gate.comparator == ">="
    verdict_, reasons = verdict(evaluate_gates(stale, [], policy), ["f1: n=5 < 100"])
    assert verdict_ == "REJECT"  # a cache-invalidating variant is rejected even if underpowered
    assert any(r.startswith("kv_hit_rate") for r in reasons)


def _router_stats(plan_length=1.5, switch_rate=0.1, monotone=True, rise=-0.2, margin=0.05):
    return {
        "router": True,
        "n_sequences": 50,
        "plan_length": plan_length,
        "switch_rate": switch_rate,
        "monotonicity": {
            "n": 50,
            "means": {"clean": 0.8, "half_shuffled": 0.6, "shuffled": 0.4},
            "monotone": monotone,
            "max_rise": rise,
            "max_rise_margin": margin,
        },
    }


def test_router_gates_bound_plan_length_switch_rate_and_evidence_monotonicity() -> None:
    policy = GatePolicy(min_improvement=0.0, alpha=0.05)

    def gates_for(**stats):
        inputs = replace(PASSING_INPUTS, router=_router_stats(**stats))
        return _by_name(evaluate_gates(inputs, [], policy))

    ok = gates_for(plan_length=3.0, switch_rate=0.2)  # both bounds inclusive
    assert all(ok[(name, None)].passed for name in ROUTER_GATES)
    assert not gates_for(plan_length=3.01)[("plan_length", None)].passed
    assert not gates_for(switch_rate=0.21)[("switch_rate", None)].passed
    rises = gates_for(monotone=False, rise=0.3, margin=0.1)[("evidence_monotonicity", None)]
    assert not rises.passed and rises.observed == 0.3 and rises.threshold == 0.1
    assert "clean 0.800, half-shuffled 0.600, shuffled 0.400" in rises.detail
    assert ("plan_length", None) not in _by_name(evaluate_gates(PASSING_INPUTS, [], policy))


def test_a_failed_router_gate_rejects_even_when_underpowered() -> None:
    inputs = replace(PASSING_INPUTS, router=_router_stats(switch_rate=0.5))
    weak = [MetricEvidence("f1", 0.01, -0.02, 0.4)]
    gates = evaluate_gates(inputs, weak, GatePolicy(min_improvement=0.005, alpha=0.05))
    verdict_, reasons = verdict(gates, ["f1: n=60 < 100"])
    assert verdict_ == "REJECT"  # more data does not make a router switch less
    assert any(r.startswith("switch_rate") for r in reasons)
