"""Online runs' stream timeline and events.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

- `stream_point`: per live batch of an online (OL) run, the mean score of the serving
  weights, the shadow and the deployed adapter, and which weights served.
- `stream_event`: the run's canary decisions, promotions, drift alarms and rollbacks, in
  stream order, each with its live batch index.

New tables only: older stores gain them empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("serving", sa.Float(), nullable=False),
        sa.Column("shadow", sa.Float(), nullable=False),
        sa.Column("deployed", sa.Float(), nullable=False),
        sa.Column("serving_source", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name="fk_stream_point_run_id_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stream_point"),
        sa.UniqueConstraint("run_id", "batch", name="uq_stream_point_run_id_batch"),
    )
    op.create_index("ix_stream_point_run_id", "stream_point", ["run_id"])
    op.create_table(
        "stream_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name="fk_stream_event_run_id_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stream_event"),
        sa.UniqueConstraint("run_id", "seq", name="uq_stream_event_run_id_seq"),
    )
    op.create_index("ix_stream_event_run_id", "stream_event", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_stream_event_run_id", "stream_event")
    op.drop_table("stream_event")
    op.drop_index("ix_stream_point_run_id", "stream_point")
    op.drop_table("stream_point")
