"""What one experiment yields, whatever its protocol: the record `engine.decision` turns into a
verdict (with the rest of the batch) and the store keeps.

A protocol fills `metrics` with its paired per-example evidence as statistics
(`engine.protocols.evidence`), the cost ratios it measured (None = not measured: its cost
gate is then not applied), and what it measures on its own in `variant_stats`/`costs`, as
report `sections` and as `protocol_gates`; the verdict fields are left empty for the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import stats
from engine.gates import Gate
from engine.plan import ExperimentPlan
from engine.sections import Section
from engine.spec import LoadedSpec


@dataclass
class MetricOutcome:
    """One metric's statistics plus what only the whole invocation knows (adjusted p)."""

    stats: stats.MetricComparison
    seed_diffs: list[float]  # each training seed's mean difference (spread across seeds)
    p_adjusted: float | None = None
    # an earlier metric whose per-example differences this one repeats exactly (on the
    # synthetic QA task F1 equals exact match): counted once in the BH family, no own gates
    identical_to: str | None = None

    @property
    def metric(self) -> str:
        return self.stats.metric

    @property
    def interval(self) -> stats.Interval:
        return self.stats.interval

    @property
    def test(self) -> stats.PairedTest:
        return self.stats.test


@dataclass
class ExperimentOutcome:
    name: str
    spec: LoadedSpec
    plan: ExperimentPlan
    experiment_id: int
    baseline_run_id: int
    variant_run_id: int
    param_ratio: float
    flop_ratio: float
    latency_ratio: float | None
    memory_ratio: float | None
    metrics: list[MetricOutcome]
    kv_hit_rate: float | None = None
    kv_hit_rate_baseline: float | None = None
    pregen_ms: float | None = None  # variant's once-per-prompt routing phase, p50
    variant_stats: dict | None = None  # the variant arm's own measurements (router gates)
    baseline_stats: dict | None = None
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    gates: list = field(default_factory=list)
    comparison_id: int | None = None
    family_size: int = 0
    seed_runs: list[dict] = field(default_factory=list)
    underpowered: list[str] = field(default_factory=list)
    arms: list[dict] | None = None  # engine.arms.ScoredArm.to_dict() of every compared run
    # the cost measurements' details: latency interval, rounds, load; memory by phase
    costs: dict | None = None
    # what every view shows of the protocol's own measurements (engine.sections)
    sections: list[Section] = field(default_factory=list)
    # gates only this protocol can evaluate (a stream's canary, a curve's operating point);
    # the decision adds them to the shared ones and the verdict weighs them alike
    protocol_gates: list[Gate] = field(default_factory=list)
