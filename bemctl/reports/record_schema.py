"""The report record's shape, as types: what every view (JSON, Markdown, HTML, CSV, the
terminal verdict, the console) may read, and nothing else.

The record stays a plain JSON-able dict (the JSON report *is* it, and researchers load it
with `json.load`); these TypedDicts make its keys checkable by a type checker and give one
place that lists them. The README's "Report record" table documents each field.
"""

from __future__ import annotations

from typing import Any, TypedDict


class SectionRecord(TypedDict):
    """A protocol's own measurements (`engine.sections.Section.to_dict`)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str]
    brief: list[str]


class GateRecord(TypedDict):
    gate: str
    metric: str | None
    passed: bool
    outcome: str  # store.states.GateOutcome
    observed: float | None
    threshold: float | None
    comparator: str
    detail: str


class Budget(TypedDict):
    param_ratio: float | None
    flop_ratio: float | None
    latency_ratio: float | None
    latency_ratio_low: float | None
    latency_ratio_high: float | None
    memory_ratio: float | None


class AcceptanceDecision(TypedDict):
    budget_parity: bool
    statistical_significance: bool
    ci_bounds_positive: bool
    min_improvement: bool
    performance_gates: bool
    overall_verdict: str  # store.states.Verdict
    reasons: list[str]
    underpowered: list[str]


class StatisticalValidation(TypedDict):
    """Per metric: `paired_differences`, `bca_bootstrap`, `paired_tests`, `effect_sizes`,
    `power_analysis` (each a dict keyed by metric name); the BH family in `fdr_correction`;
    the per-seed spread in `seeds`."""

    paired_differences: dict[str, float]
    bca_bootstrap: dict[str, dict[str, Any]]
    ci_note: str
    identical_metrics: dict[str, str]
    paired_tests: dict[str, dict[str, Any]]
    fdr_correction: dict[str, Any]
    effect_sizes: dict[str, dict[str, Any]]
    power_analysis: dict[str, dict[str, Any]]
    seeds: dict[str, Any]


class StreamPointRecord(TypedDict):
    """One live batch of an online run (`store.stream.PointRow`): mean exact match 0..1."""

    batch: int
    phase: str
    serving: float
    shadow: float
    deployed: float
    serving_source: str  # "deployed" or "shadow@<batch promoted>"


class StreamEventRecord(TypedDict):
    seq: int
    batch: int
    kind: str  # canary | promotion | drift_alarm | rollback
    detail: str


class StreamRecord(TypedDict):
    """The variant run's stream timeline, in stream order."""

    run_id: int
    points: list[StreamPointRecord]
    events: list[StreamEventRecord]


class RateRecord(TypedDict):
    value: float
    low: float  # BCa interval of the mean (NaN with fewer than 2 examples)
    high: float
    n: int  # the examples the rate is over (must-refuse or benign ones)


class CurvePointRecord(TypedDict):
    """One α of a VC safety-utility curve (`engine.protocols.curve.points.CurvePoint`)."""

    alpha: float
    split: str  # "test" for the curve, "baseline" for the baseline arm's point
    violation_rate: RateRecord
    exact_match: RateRecord
    f1: RateRecord
    over_refusal: RateRecord


class CurveRecord(TypedDict):
    operating_alpha: float  # chosen on the validation split
    rule: str
    points: list[CurvePointRecord]  # the test split at every α, reported, not tested
    baseline: CurvePointRecord
    validation: list[CurvePointRecord]  # what the operating α was chosen on


class ComparisonRecord(TypedDict):
    schema_version: int
    experiment_id: str
    variant_name: str
    variant: str
    protocol: str
    comparison_id: int
    invocation_id: str
    created_at: str
    spec_hash: str
    # each metric's mean plus the arm's costs, run id, seed, device and own measurements
    baseline_metrics: dict[str, Any]
    variant_metrics: dict[str, Any]
    budget: Budget
    costs: dict[str, Any] | None
    statistical_validation: StatisticalValidation
    gates: list[GateRecord]
    sections: list[SectionRecord]
    stream: StreamRecord | None  # an online variant run's timeline; None for every other
    curve: CurveRecord | None  # a VC comparison's safety-utility curve; None for every other
    acceptance_decision: AcceptanceDecision
