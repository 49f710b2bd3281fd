"""The work queue: batches, jobs held by leases, job events; runs point at their job.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Self-contained like 0001: plain column types, constraint names spelled out so a later
batch migration can find them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "batch",
        sa.Column("id", sa.String(), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        _time("decided_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("experiment_name", sa.String(), nullable=False),
        sa.Column("spec_path", sa.String(), nullable=False),
        sa.Column("options_json", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        _time("created_at", nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("worker_id", sa.String(), nullable=True),
        sa.Column("worker_host", sa.String(), nullable=True),
        sa.Column("worker_pid", sa.Integer(), nullable=True),
        _time("heartbeat_at"),
        _time("lease_expires_at"),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("phase", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("outcome_json", sa.String(), nullable=True),
        sa.Column("comparison_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"], name=op.f("fk_job_batch_id_batch")),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiment.id"], name=op.f("fk_job_experiment_id_experiment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index(op.f("ix_job_batch_id"), "job", ["batch_id"], unique=False)
    op.create_index(op.f("ix_job_experiment_id"), "job", ["experiment_id"], unique=False)
    op.create_index(op.f("ix_job_status"), "job", ["status"], unique=False)
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        _time("at", nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_event_job_id_job"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    op.create_index(op.f("ix_event_job_id"), "event", ["job_id"], unique=False)
    # Plain ALTER TABLE ADD COLUMN (with its REFERENCES clause) instead of batch mode:
    # batch mode would copy `run` and DROP the old table, which the foreign keys of
    # step_metric, example_score... refuse while they have rows, and PRAGMA foreign_keys
    # cannot be switched off inside the transaction the migration runs in.
    op.execute(
        "ALTER TABLE run ADD COLUMN job_id INTEGER CONSTRAINT fk_run_job_id_job REFERENCES job (id)"
    )
    op.add_column(
        "run", sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("1"))
    )
    op.create_index(op.f("ix_run_job_id"), "run", ["job_id"], unique=False)


def downgrade() -> None:
    # Batch mode rebuilds `run`; like any such rebuild under foreign keys it only works
    # while no other table holds rows that point at runs (a developer's empty store).
    op.drop_index(op.f("ix_run_job_id"), table_name="run")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("attempt")
        batch.drop_column("job_id")
    op.drop_index(op.f("ix_event_job_id"), table_name="event")
    op.drop_table("event")
    op.drop_index(op.f("ix_job_status"), table_name="job")
    op.drop_index(op.f("ix_job_experiment_id"), table_name="job")
    op.drop_index(op.f("ix_job_batch_id"), table_name="job")
    op.drop_table("job")
    op.drop_table("batch")
