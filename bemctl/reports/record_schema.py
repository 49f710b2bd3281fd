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
    acceptance_decision: AcceptanceDecision
