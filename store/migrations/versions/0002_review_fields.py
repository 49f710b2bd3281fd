"""Statistics a reviewer asks for: discordant pairs, power, Hedges' g, seeds, underpowered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Columns are added with batch_alter_table (SQLite cannot ALTER most things in place); every
new column is nullable or has a server default, so stores written by 0001 upgrade in place
with their rows intact.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FALSE = sa.text("0")


def upgrade() -> None:
    with op.batch_alter_table("comparison") as batch:
        batch.add_column(sa.Column("seeds_json", sa.String(), nullable=True))
        batch.add_column(sa.Column("underpowered_json", sa.String(), nullable=True))
    with op.batch_alter_table("stat_result") as batch:
        batch.add_column(sa.Column("binary", sa.Boolean(), nullable=False, server_default=_FALSE))
        batch.add_column(sa.Column("discordant_b", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("discordant_c", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("n_permutations", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hedges_g", sa.Float(), nullable=True))
        batch.add_column(sa.Column("power", sa.Float(), nullable=True))
        batch.add_column(sa.Column("mde", sa.Float(), nullable=True))
        batch.add_column(sa.Column("n_needed", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("target_power", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("underpowered", sa.Boolean(), nullable=False, server_default=_FALSE)
        )
        batch.add_column(sa.Column("underpowered_reason", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("corpus_level", sa.Boolean(), nullable=False, server_default=_FALSE)
        )
        batch.add_column(
            sa.Column("n_seeds", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("seed_diff_mean", sa.Float(), nullable=True))
        batch.add_column(sa.Column("seed_diff_sd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stat_result") as batch:
        for name in (
            "seed_diff_sd",
            "seed_diff_mean",
            "n_seeds",
            "corpus_level",
            "underpowered_reason",
            "underpowered",
            "target_power",
            "n_needed",
            "mde",
            "power",
            "hedges_g",
            "n_permutations",
            "discordant_c",
            "discordant_b",
            "binary",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("comparison") as batch:
        batch.drop_column("underpowered_json")
        batch.drop_column("seeds_json")
