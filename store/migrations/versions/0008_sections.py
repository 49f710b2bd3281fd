"""Report sections: what a protocol measures on its own, as tables every view renders.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

- `comparison.sections_json`: the comparison's sections (`engine.sections.Section`, a JSON
  list of {key, title, columns, rows, notes, brief}), written with the verdict. NULL in
  comparisons made before this revision: the report record rebuilds the A/B protocol's
  sections (router, routing dynamics) from the runs' stored `variant_stats_json` for them.

Plain ALTER TABLE ADD COLUMN, as 0005 and 0006.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("comparison", sa.Column("sections_json", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("comparison", "sections_json")
