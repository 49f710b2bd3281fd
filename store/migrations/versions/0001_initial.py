"""Initial schema: experiments, runs, per-step and per-example results, comparisons.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written from an autogenerate of `store.models` and then made self-contained: columns use
plain `sa.String`/`sa.DateTime` so this file never changes meaning when model code does.
Timestamps are stored as naive UTC (see `store.types.UTCDateTime`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _str(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _int(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _float(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def _fk(column: str, table: str, target: str, ondelete: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def _pk(table: str) -> sa.Constraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _uq(table: str, *columns: str) -> sa.Constraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "experiment",
        _id(),
        _str("name"),
        _str("spec_json"),
        _str("spec_hash"),
        _str("spec_path"),
        _time("created_at"),
        _pk("experiment"),
        _uq("experiment", "name", "spec_hash"),
    )
    _index("experiment", "name")

    op.create_table(
        "run",
        _id(),
        _int("experiment_id"),
        _str("invocation_id"),
        _str("role"),
        _int("seed"),
        _str("status"),
        sa.Column("quick", sa.Boolean(), nullable=False),
        _str("device"),
        _time("created_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        _str("error", nullable=True),
        _int("pid", nullable=True),
        _str("hostname", nullable=True),
        _int("total_steps"),
        _int("current_step"),
        _float("last_loss", nullable=True),
        _int("params_total", nullable=True),
        _int("params_trainable", nullable=True),
        _float("flops_per_token", nullable=True),
        _float("latency_p50_ms", nullable=True),
        _float("latency_p95_ms", nullable=True),
        _int("peak_memory_bytes", nullable=True),
        _str("memory_kind", nullable=True),
        _int("gpu_memory_used_bytes", nullable=True),
        _float("gpu_utilization", nullable=True),
        _str("adapter_path", nullable=True),
        _fk("experiment_id", "run", "experiment"),
        _pk("run"),
    )
    _index("run", "experiment_id")
    _index("run", "invocation_id")
    _index("run", "status")

    op.create_table(
        "step_metric",
        _id(),
        _int("run_id"),
        _int("step"),
        _float("loss"),
        _float("lr"),
        _float("elapsed_s"),
        _fk("run_id", "step_metric", "run", ondelete="CASCADE"),
        _pk("step_metric"),
        _uq("step_metric", "run_id", "step"),
    )
    _index("step_metric", "run_id")

    op.create_table(
        "example_score",
        _id(),
        _int("run_id"),
        _str("example_id"),
        _str("metric"),
        _float("value"),
        _fk("run_id", "example_score", "run", ondelete="CASCADE"),
        _pk("example_score"),
        _uq("example_score", "run_id", "example_id", "metric"),
    )
    _index("example_score", "run_id")

    op.create_table(
        "prediction",
        _id(),
        _int("run_id"),
        _str("example_id"),
        _str("prediction"),
        _str("references_json"),
        _float("latency_ms", nullable=True),
        _fk("run_id", "prediction", "run", ondelete="CASCADE"),
        _pk("prediction"),
        _uq("prediction", "run_id", "example_id"),
    )
    _index("prediction", "run_id")

    op.create_table(
        "comparison",
        _id(),
        _int("experiment_id"),
        _str("invocation_id"),
        _int("baseline_run_id"),
        _int("variant_run_id"),
        _time("created_at"),
        _str("verdict"),
        _str("reasons_json"),
        _int("family_size"),
        _float("param_ratio", nullable=True),
        _float("flop_ratio", nullable=True),
        _float("latency_ratio", nullable=True),
        _float("memory_ratio", nullable=True),
        _int("bootstrap_samples"),
        _int("seed"),
        _fk("baseline_run_id", "comparison", "run"),
        _fk("experiment_id", "comparison", "experiment"),
        _fk("variant_run_id", "comparison", "run"),
        _pk("comparison"),
    )
    _index("comparison", "experiment_id")
    _index("comparison", "invocation_id")

    op.create_table(
        "stat_result",
        _id(),
        _int("comparison_id"),
        _str("metric"),
        _int("n"),
        _float("baseline_mean"),
        _float("variant_mean"),
        _float("mean_diff"),
        _float("ci_low"),
        _float("ci_high"),
        _float("confidence_level"),
        _str("ci_method"),
        _int("bootstrap_samples"),
        _float("z0", nullable=True),
        _float("acceleration", nullable=True),
        _str("test_name"),
        _float("p_value"),
        _float("p_adjusted", nullable=True),
        _int("family_size"),
        _float("effect_dz", nullable=True),
        _str("effect_formula"),
        sa.Column("degenerate", sa.Boolean(), nullable=False),
        _fk("comparison_id", "stat_result", "comparison", ondelete="CASCADE"),
        _pk("stat_result"),
    )
    _index("stat_result", "comparison_id")

    op.create_table(
        "gate_decision",
        _id(),
        _int("comparison_id"),
        _str("gate"),
        _str("metric", nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        _float("observed", nullable=True),
        _float("threshold", nullable=True),
        _str("comparator"),
        _str("detail"),
        _fk("comparison_id", "gate_decision", "comparison", ondelete="CASCADE"),
        _pk("gate_decision"),
    )
    _index("gate_decision", "comparison_id")


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes with it.
    for table in (
        "gate_decision",
        "stat_result",
        "comparison",
        "prediction",
        "example_score",
        "step_metric",
        "run",
        "experiment",
    ):
        op.drop_table(table)
