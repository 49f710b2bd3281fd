"""CHECK constraints on every state column: statuses, role, verdict, gate outcome.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The values are those of the enums in `store.states`, spelled out here so this file never
changes meaning when that module does (tests/store/test_migrations.py checks they agree):

- `run.role` (ck_run_role), `run.status` (ck_run_status)
- `job.status` (ck_job_status), `batch.status` (ck_batch_status)
- `comparison.verdict` (ck_comparison_verdict)
- `gate_decision.outcome` (ck_gate_decision_outcome; NULL, as in rows written before
  schema 0006, passes)

SQLite cannot add a constraint to a table, so batch mode rebuilds each of them (new table,
rows copied, old one dropped, new one renamed). Most of these tables are parents of others
(`step_metric` -> `run`, `gate_decision` -> `comparison`, ...): dropping the old table with
foreign keys enforced would cascade-delete or refuse the children's rows, so `Store` runs
migrations with `PRAGMA foreign_keys=OFF` and checks `PRAGMA foreign_key_check` before it
commits (store/db.py). A row holding a value outside its set stops the upgrade with the
offending values named, before anything is rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.errors import BemctlError

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
_JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

# (table, column, allowed values); the constraint is named ck_<table>_<column>
CHECKS: list[tuple[str, str, tuple[str, ...]]] = [
    ("batch", "status", ("open", "decided", "abandoned")),
    ("job", "status", _JOB_STATUSES),
    ("run", "role", ("baseline", "variant")),
    ("run", "status", _RUN_STATUSES),
    (
        "comparison",
        "verdict",
        ("PROMOTE", "REJECT", "INCONCLUSIVE (underpowered)", "INCONCLUSIVE (cost)"),
    ),
    ("gate_decision", "outcome", ("pass", "fail", "inconclusive")),
]


# Names a reflected foreign key that has none: SQLite does not report the name of a
# column-level constraint (run.job_id's, added by 0004 as "... CONSTRAINT fk_run_job_id_job
# REFERENCES job"), and the rebuilt table must keep it under the name the models give it.
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def condition(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _refuse_unknown_values() -> None:
    bind = op.get_bind()
    bad = []
    for table, column, values in CHECKS:
        found = bind.execute(
            sa.text(
                f"SELECT DISTINCT {column} FROM {table} "
                f"WHERE {column} IS NOT NULL AND NOT ({condition(column, values)})"
            )
        ).scalars()
        bad += [f"{table}.{column} = {v!r}" for v in found]
    if bad:
        raise BemctlError(
            "schema 0007: rows hold states this bemctl does not know ("
            + ", ".join(bad)
            + "); fix or delete those rows, then open the store again"
        )


def upgrade() -> None:
    _refuse_unknown_values()
    tables = dict.fromkeys(t for t, _, _ in CHECKS)
    for table in tables:
        with op.batch_alter_table(table, recreate="always", naming_convention=_NAMING) as batch:
            for t, column, values in CHECKS:
                if t == table:
                    batch.create_check_constraint(
                        op.f(f"ck_{table}_{column}"), condition(column, values)
                    )


def downgrade() -> None:
    tables = dict.fromkeys(t for t, _, _ in CHECKS)
    for table in tables:
        with op.batch_alter_table(table, recreate="always", naming_convention=_NAMING) as batch:
            for t, column, _ in CHECKS:
                if t == table:
                    batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
