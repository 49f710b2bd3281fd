"""A batch's verdicts: BH-FDR over every (experiment, metric) of the batch, then the gates.

Kept apart from training because it runs later and elsewhere: when the last job of a
batch finishes, on whichever worker finished it, from the outcomes stored as JSON. Before
any of that, an outcome whose arms differ in more than the variant is refused
(`arm_refusal`): it gets no verdict and does not join the BH family.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from sqlmodel import Session

from engine import stats
from engine.arms import ScoredArm, comparison_refusal
from engine.gates import GateInputs, GatePolicy, MetricEvidence, evaluate_gates, verdict
from engine.outcome import ExperimentOutcome, MetricOutcome
from engine.plan import field_differences
from store.models import Comparison, GateDecision, StatResult
from store.queries import add_comparison


def arm_refusal(o: ExperimentOutcome) -> str | None:
    """Why `o`'s comparison must get no verdict, as one line, or None when it may: read from
    the stored outcome, its arms (every seed's baseline and variant) must share the plan, base
    model, eval set and device, and be scored on the same example ids in the same positions
    - the runner checked this too; this is the check of what was actually stored."""
    if not o.arms:
        return (
            f"{o.name}: refused: its outcome records nothing about its arms' plans "
            "(made by an older bemctl), so they cannot be checked; retry it"
        )
    arms = [ScoredArm.from_dict(a) for a in o.arms]
    named = {o.baseline_run_id, o.variant_run_id} | {
        r[key] for r in o.seed_runs for key in ("baseline_run_id", "variant_run_id")
    }
    unrecorded = sorted(named - {a.run_id for a in arms})
    if unrecorded:
        return f"{o.name}: refused: run(s) {unrecorded} are compared but have no arm record"
    refusal = comparison_refusal(arms)
    if refusal is not None:
        return f"{o.name}: {refusal}"
    record = arms[0].record
    assert record is not None  # comparison_refusal refuses a missing record
    plan = json.loads(json.dumps(dataclasses.asdict(o.plan)))
    diffs = field_differences(plan, record.plan)
    if diffs:
        what = ", ".join(f"{k} ({x} vs {y})" for k, x, y in diffs)
        return f"{o.name}: refused: the outcome's plan and its arms' plan differ in {what}"
    return None


def decide(outcomes: list[ExperimentOutcome]) -> None:
    """Fill in adjusted p-values, gates, verdict and reasons of every outcome, in place.

    The BH family is every (experiment, metric) of the batch, except a metric whose paired
    differences repeat another's of the same experiment exactly (`identical_to`): it is one
    test, counted once, and the repeat carries its twin's adjusted p-value.
    """
    family = [(o, m) for o in outcomes for m in o.metrics if m.identical_to is None]
    alpha = min((o.plan.fdr_alpha for o in outcomes), default=0.05)
    fdr = stats.benjamini_hochberg([m.test.p_value for _, m in family], alpha)
    for (_, m), adj in zip(family, fdr.adjusted, strict=True):
        m.p_adjusted = float(adj)
    for o in outcomes:
        by_name = {m.metric: m for m in o.metrics}
        for m in o.metrics:
            if m.identical_to is not None:
                m.p_adjusted = by_name[m.identical_to].p_adjusted
    for o in outcomes:
        o.family_size = fdr.family_size
        gates_spec = o.spec.spec.acceptance_gates
        costs = o.costs or {}
        latency = costs.get("latency") or {}
        o.gates = evaluate_gates(
            GateInputs(
                o.param_ratio,
                o.flop_ratio,
                o.latency_ratio,
                o.memory_ratio,
                o.plan.budget_tolerance,
                o.plan.latency_budget,
                o.plan.memory_budget,
                o.kv_hit_rate,
                o.kv_hit_rate_baseline,
                o.variant_stats if (o.variant_stats or {}).get("router") else None,
                latency_interval=(
                    (latency["low"], latency["high"]) if latency.get("low") is not None else None
                ),
                latency_rounds=latency.get("rounds"),
                memory_detail=memory_detail(costs.get("memory")),
            ),
            [
                MetricEvidence(
                    m.metric, m.interval.estimate, m.interval.low, m.p_adjusted, m.identical_to
                )
                for m in o.metrics
            ],
            GatePolicy(
                gates_spec.min_improvement,
                o.plan.fdr_alpha,
                gates_spec.statistical_significance,
                gates_spec.ci_lower_bound_positive,
                gates_spec.performance_gates_pass,
                dict(gates_spec.non_inferiority_margin),
            ),
        ) + list(o.protocol_gates)
        o.underpowered = [
            f"{m.metric}: {m.stats.underpowered_reason}" for m in o.metrics if m.stats.underpowered
        ]
        o.verdict, o.reasons = verdict(o.gates, o.underpowered)


def memory_detail(memory: dict | None) -> str | None:
    """The memory gate's detail line: both phases' ratios, and which the gate takes."""
    if not memory:
        return None
    train, generate = memory.get("train_ratio"), memory.get("generate_ratio")
    if train is None or generate is None:
        return None
    phase = "training step" if train >= generate else "generation"
    return (
        f"peak tensor memory, variant / baseline: training step x{train:.4f}, generation "
        f"x{generate:.4f} (gated: {phase}; {memory.get('kind')})"
    )


def write_decisions(session: Session, outcomes: list[ExperimentOutcome], batch_id: str) -> None:
    """Add each outcome's comparison, stats and gates to `session` (the caller commits)."""
    for o in outcomes:
        o.comparison_id = add_comparison(session, *comparison_rows(o, batch_id))


def comparison_rows(
    o: ExperimentOutcome, invocation_id: str
) -> tuple[Comparison, list[StatResult], list[GateDecision]]:
    comparison = Comparison(
        experiment_id=o.experiment_id,
        invocation_id=invocation_id,
        baseline_run_id=o.baseline_run_id,
        variant_run_id=o.variant_run_id,
        verdict=o.verdict,
        reasons_json=json.dumps(o.reasons),
        family_size=o.family_size,
        param_ratio=o.param_ratio,
        flop_ratio=o.flop_ratio,
        latency_ratio=o.latency_ratio,
        latency_ratio_low=((o.costs or {}).get("latency") or {}).get("low"),
        latency_ratio_high=((o.costs or {}).get("latency") or {}).get("high"),
        costs_json=json.dumps(o.costs) if o.costs is not None else None,
        memory_ratio=o.memory_ratio,
        bootstrap_samples=o.plan.bootstrap_samples,
        seed=o.plan.seed,
        seeds_json=json.dumps(o.seed_runs),
        underpowered_json=json.dumps(o.underpowered),
        sections_json=json.dumps([section.to_dict() for section in o.sections]),
    )
    stat_rows = [_stat_row(m, o) for m in o.metrics]
    gate_rows = [
        GateDecision(
            gate=g.gate,
            metric=g.metric,
            passed=g.passed,
            outcome=g.outcome,
            observed=g.observed,
            threshold=g.threshold,
            comparator=g.comparator,
            detail=g.detail,
        )
        for g in o.gates
    ]
    return comparison, stat_rows, gate_rows


def _stat_row(m: MetricOutcome, o: ExperimentOutcome) -> StatResult:
    r = m.stats
    b_c = r.test.discordant or (None, None)
    spread = np.array(m.seed_diffs)
    return StatResult(
        metric=r.metric,
        n=r.n,
        baseline_mean=r.baseline_mean,
        variant_mean=r.variant_mean,
        mean_diff=r.interval.estimate,
        ci_low=r.interval.low,
        ci_high=r.interval.high,
        confidence_level=r.interval.confidence_level,
        ci_method=r.interval.method,
        bootstrap_samples=r.interval.n_resamples,
        z0=r.interval.z0,
        acceleration=r.interval.acceleration,
        test_name=r.test.name,
        p_value=r.test.p_value,
        p_adjusted=m.p_adjusted,
        family_size=o.family_size,
        effect_dz=r.effect.d_z,
        effect_formula=r.effect.formula,
        degenerate=r.interval.degenerate,
        binary=r.binary,
        discordant_b=b_c[0],
        discordant_c=b_c[1],
        n_permutations=r.test.n_permutations,
        hedges_g=r.effect.hedges_g,
        power=r.power.power,
        mde=r.power.mde,
        n_needed=r.power.n_needed,
        target_power=r.power.target_power,
        underpowered=r.underpowered,
        underpowered_reason=r.underpowered_reason,
        corpus_level=r.corpus,
        n_seeds=len(spread),
        seed_diff_mean=float(spread.mean()),
        seed_diff_sd=float(spread.std(ddof=1)) if len(spread) > 1 else None,
        identical_to=m.identical_to,
    )
