"""SQLModel tables of the bemctl store.

The schema itself is owned by the Alembic revisions in `store/migrations`; these classes
must stay in step with them (tests/store/test_db.py checks there is no drift).
Timestamps are aware UTC datetimes (see `store.types.UTCDateTime`).
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.states import (
    BatchStatus,
    GateOutcome,
    JobStatus,
    Role,
    RunStatus,
    Verdict,
    check_in,
)
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

# The states of run/job/batch status, run role, verdict and gate outcome are the enums of
# store.states; each such column carries a CHECK constraint naming its values (schema 0007,
# named ck_<table>_<column> by the convention above).


def _check(column: str, states: type[StrEnum]) -> CheckConstraint:
    return CheckConstraint(check_in(column, states), name=column)


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


class Batch(SQLModel, table=True):
    """Jobs queued together; their metrics form one Benjamini-Hochberg family (schema 0004).

    The verdicts are written once, when the last job of the batch is finished, because the
    adjusted p-values of each experiment depend on every other experiment in the family.
    """

    __tablename__ = "batch"
    __table_args__ = (_check("status", BatchStatus),)

    id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = BatchStatus.OPEN
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Job(SQLModel, table=True):
    """One experiment (both arms, every seed) waiting for or held by a worker (schema 0004).

    A worker holds a job by its lease: `lease_expires_at` moves forward with every
    heartbeat, and a lease that lapses means the worker is gone, so the job is requeued.
    """

    __tablename__ = "job"
    __table_args__ = (_check("status", JobStatus),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batch.id", index=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    experiment_name: str
    spec_path: str
    options_json: str  # engine.plan.RunOptions as JSON
    priority: int = 0  # higher first, then oldest first
    status: str = Field(default=JobStatus.QUEUED, index=True)
    attempts: int = 0
    max_attempts: int = 3
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    worker_id: str | None = None
    worker_host: str | None = None
    worker_pid: int | None = None
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_requested: bool = False
    phase: str | None = None  # what the worker is doing now, for the console
    error: str | None = None
    outcome_json: str | None = None  # statistics waiting for the batch decision
    comparison_id: int | None = None  # no foreign key: comparison -> run -> job would cycle
    # schema 0006: the resolved plan frozen at queue time (engine.plan.ExperimentPlan as JSON)
    plan_json: str | None = None
    # schema 0006: progress of the current phase (e.g. pre-training the base model)
    phase_step: int | None = None
    phase_total: int | None = None
    phase_detail: str | None = None
    phase_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Event(SQLModel, table=True):
    """What happened to a job, in order: claimed, phases, interrupted, requeued, failed."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE", index=True)
    run_id: int | None = None
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str
    message: str


class Run(SQLModel, table=True):
    """One training+evaluation of one arm (baseline or variant) with one seed."""

    __tablename__ = "run"
    __table_args__ = (_check("role", Role), _check("status", RunStatus))

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
    job_id: int | None = Field(default=None, foreign_key="job.id", index=True)  # schema 0004
    attempt: int = 1  # schema 0004: which attempt of its job created this run
    adapter_key: str | None = Field(default=None, index=True)  # schema 0005: what trained it
    adapter_source_run_id: int | None = None  # schema 0005: adapter taken from this run
    variant_stats_json: str | None = None  # schema 0005: the variant's own measurements
    plan_json: str | None = None  # schema 0006: the plan this arm was trained/evaluated under
    tensor_peak_train_bytes: int | None = None  # schema 0006: peak tensor memory, train step
    tensor_peak_generate_bytes: int | None = None  # schema 0006: peak tensor memory, generation
    rss_peak_bytes: int | None = None  # schema 0006: process peak RSS (context, not gated)
    latency_samples_json: str | None = None  # schema 0006: interleaved latency rounds, ms
    load_json: str | None = None  # schema 0006: machine load while measuring
    curve_quantity: str | None = None  # schema 0006: what step rows measure (None: LM loss)


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
    position: int | None = None  # schema 0006: index in the evaluation set (pairing order)


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
    __table_args__ = (_check("verdict", Verdict),)

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
    latency_ratio_low: float | None = None  # schema 0006: interval of the p50 latency ratio
    latency_ratio_high: float | None = None
    costs_json: str | None = None  # schema 0006: cost measurement details (rounds, load, memory)
    # schema 0008: the protocol's report sections (engine.sections), JSON list
    sections_json: str | None = None


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
    identical_to: str | None = None  # schema 0006: metric with identical differences


class GateDecision(SQLModel, table=True):
    """One promotion gate's outcome, with the numbers that decided it."""

    __tablename__ = "gate_decision"
    __table_args__ = (_check("outcome", GateOutcome),)

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", ondelete="CASCADE", index=True)
    gate: str
    metric: str | None = None
    passed: bool
    observed: float | None = None
    threshold: float | None = None
    comparator: str
    detail: str
    outcome: str | None = None  # schema 0006: a GateOutcome (NULL in rows written before)


class StreamPoint(SQLModel, table=True):
    """One live batch of an online run (schema 0009): the mean score of the weights serving
    it, of the shadow and of the deployed adapter, for the stream timeline."""

    __tablename__ = "stream_point"
    __table_args__ = (UniqueConstraint("run_id", "batch"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    batch: int  # live batch index
    phase: str  # the world's phase at that point of the stream
    serving: float
    shadow: float
    deployed: float
    serving_source: str  # which weights served: "deployed" or "shadow@<batch promoted>"


class StreamEventRow(SQLModel, table=True):
    """A canary decision, promotion, drift alarm or rollback of an online run (schema 0009)."""

    __tablename__ = "stream_event"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    seq: int  # order of the event in its run's stream
    batch: int
    kind: str  # canary | promotion | drift_alarm | rollback
    detail: str
