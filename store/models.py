"""SQLModel tables of the bemctl store.

The schema itself is owned by the Alembic revisions in `store/migrations`; these classes
must stay in step with them (tests/store/test_db.py checks there is no drift).
Timestamps are aware UTC datetimes (see `store.types.UTCDateTime`).
"""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow

# Named constraints let future SQLite batch migrations drop or alter them by name;
# unnamed ones can only be rebuilt wholesale. Set before any table is declared, because
# names are assigned when a constraint is attached to its table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_ROLES = ("baseline", "variant")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")


class Experiment(SQLModel, table=True):
    """One experiment spec; a changed spec under the same name is a new row (new hash)."""

    __tablename__ = "experiment"
    __table_args__ = (UniqueConstraint("name", "spec_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    spec_json: str
    spec_hash: str
    spec_path: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Run(SQLModel, table=True):
    """One training+evaluation of one arm (baseline or variant) with one seed."""

    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    invocation_id: str = Field(index=True)
    role: str
    seed: int
    status: str = Field(index=True)
    quick: bool
    device: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = None
    pid: int | None = None
    hostname: str | None = None
    total_steps: int = 0
    current_step: int = 0
    last_loss: float | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    flops_per_token: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    peak_memory_bytes: int | None = None
    memory_kind: str | None = None
    gpu_memory_used_bytes: int | None = None
    gpu_utilization: float | None = None
    adapter_path: str | None = None
    pregen_ms_p50: float | None = None  # schema 0003: once-per-prompt routing phase (V2)
    kv_hit_rate: float | None = None  # schema 0003: cached K/V entries still valid


class StepMetric(SQLModel, table=True):
    """Training loss curve: one row per optimizer step."""

    __tablename__ = "step_metric"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    step: int
    loss: float
    lr: float
    elapsed_s: float


class ExampleScore(SQLModel, table=True):
    """Per-example metric values; paired tests need them, not just the means."""

    __tablename__ = "example_score"
    __table_args__ = (UniqueConstraint("run_id", "example_id", "metric"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    example_id: str
    metric: str
    value: float


class Prediction(SQLModel, table=True):
    """Model output per example, kept so scores can be audited or recomputed."""

    __tablename__ = "prediction"
    __table_args__ = (UniqueConstraint("run_id", "example_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    example_id: str
    prediction: str
    references_json: str
    latency_ms: float | None = None


class Comparison(SQLModel, table=True):
    """A baseline-vs-variant verdict; its stats and gates hang off it."""

    __tablename__ = "comparison"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    invocation_id: str = Field(index=True)
    baseline_run_id: int = Field(foreign_key="run.id")
    variant_run_id: int = Field(foreign_key="run.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    verdict: str
    reasons_json: str
    family_size: int
    param_ratio: float | None = None
    flop_ratio: float | None = None
    latency_ratio: float | None = None
    memory_ratio: float | None = None
    bootstrap_samples: int
    seed: int
    seeds_json: str | None = None  # JSON list of every training seed (schema 0002)
    underpowered_json: str | None = None  # JSON list of underpowered reasons (schema 0002)


class StatResult(SQLModel, table=True):
    """One metric's paired test and bootstrap interval within a comparison."""

    __tablename__ = "stat_result"

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", ondelete="CASCADE", index=True)
    metric: str
    n: int
    baseline_mean: float
    variant_mean: float
    mean_diff: float
    ci_low: float
    ci_high: float
    confidence_level: float
    ci_method: str
    bootstrap_samples: int
    z0: float | None = None
    acceleration: float | None = None
    test_name: str
    p_value: float
    p_adjusted: float | None = None
    family_size: int
    effect_dz: float | None = None
    effect_formula: str
    degenerate: bool = False
    # schema 0002: what a reviewer needs beyond the interval and p
    binary: bool = False
    discordant_b: int | None = None  # baseline right, variant wrong
    discordant_c: int | None = None  # baseline wrong, variant right
    n_permutations: int | None = None
    hedges_g: float | None = None
    power: float | None = None
    mde: float | None = None
    n_needed: int | None = None
    target_power: float | None = None
    underpowered: bool = False
    underpowered_reason: str | None = None
    corpus_level: bool = False
    n_seeds: int = 1
    seed_diff_mean: float | None = None
    seed_diff_sd: float | None = None


class GateDecision(SQLModel, table=True):
    """One promotion gate's outcome, with the numbers that decided it."""

    __tablename__ = "gate_decision"

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", ondelete="CASCADE", index=True)
    gate: str
    metric: str | None = None
    passed: bool
    observed: float | None = None
    threshold: float | None = None
    comparator: str
    detail: str
