"""Runs record where their adapter came from and what the variant measured about itself.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

- `adapter_key`: a fingerprint of everything that determines a trained adapter (arm config,
  base model, data and training specs, step budget, seed), so AR1 can find an AR0 arm
  trained earlier instead of training it again.
- `adapter_source_run_id`: set when this run's adapter was taken from that run, not trained.
- `variant_stats_json`: the variant's own measurements (the router's plan length, switch
  rate, projections, expert overlap, evidence monotonicity), which its gates read.

Plain ALTER TABLE ADD/DROP COLUMN (SQLite >= 3.35): batch mode would rebuild `run`, which
the foreign keys of other tables refuse while they hold rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("run", sa.Column("adapter_key", sa.String(), nullable=True))
    op.add_column("run", sa.Column("adapter_source_run_id", sa.Integer(), nullable=True))
    op.add_column("run", sa.Column("variant_stats_json", sa.String(), nullable=True))
    op.create_index(op.f("ix_run_adapter_key"), "run", ["adapter_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_run_adapter_key"), table_name="run")
    op.drop_column("run", "variant_stats_json")
    op.drop_column("run", "adapter_source_run_id")
    op.drop_column("run", "adapter_key")
