"""Per-run pre-generation latency (V2's once-per-prompt phase) and KV-cache hit rate.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("pregen_ms_p50", sa.Float(), nullable=True))
        batch.add_column(sa.Column("kv_hit_rate", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("kv_hit_rate")
        batch.drop_column("pregen_ms_p50")
