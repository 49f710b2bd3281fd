"""The store's schema: which Alembic revision a file is at, what that means, migrating it.

One rule (`classify_schema`) says what a file's tables and recorded revisions mean to
this bemctl (current, older, newer, foreign or empty); the `Store` (`store.db`) follows it
when it opens a file, and `bemctl doctor` reports it (`inspect_schema`, which reads the
file without writing anything). Migrations run from code (`alembic_config`: no
alembic.ini has to ship or be found), inside the opening store's write transaction, with
foreign keys off while tables are rebuilt and checked before the upgrade commits.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from store.errors import BemctlError
from store.readonly import reader_uri

SCHEMA_HEAD = "0009"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config built in code, so no alembic.ini has to ship or be found.

    With `connection`, env.py migrates over it (inside the caller's transaction).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


SchemaState = Literal["current", "older", "newer", "foreign", "empty"]


@dataclass(frozen=True)
class SchemaStatus:
    """What a store file's schema is to this bemctl (`revision` None: no version table)."""

    revision: str | None
    state: SchemaState

    def describe(self) -> str:
        """One line for `bemctl doctor`, true to what the commands will do with it."""
        head = script_directory().get_current_head()
        return {
            "current": f"schema {self.revision}, head {head} (up to date)",
            "older": f"schema {self.revision}, head {head} "
            "(older than this bemctl: the next write command upgrades it)",
            "newer": f"schema {self.revision}, head {head} "
            "(newer than this bemctl: every command refuses it; upgrade bemctl)",
            "foreign": "not a bemctl store (tables but no schema version): every command "
            "refuses it; move it away or set a different store path",
            "empty": "empty (the next write command creates the schema)",
        }[self.state]


def inspect_schema(path: Path) -> SchemaStatus:
    """The schema state of an existing store file, read without writing anything.

    Raises BemctlError if the file cannot be read as SQLite at all."""
    uri, _ = reader_uri(path)
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            }
            revisions: list[str] = []
            if "alembic_version" in tables:
                revisions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.Error as exc:
        raise BemctlError(f"{path}: not readable as a bemctl store ({exc})") from None
    return SchemaStatus(revisions[0] if revisions else None, classify_schema(tables, revisions))


def classify_schema(tables: set[str], revisions: list[str]) -> SchemaState:
    """One rule for the store, the commands and `bemctl doctor`: what these tables and
    Alembic revisions mean to this bemctl."""
    if not revisions:
        return "foreign" if tables - {"alembic_version"} else "empty"
    script = script_directory()
    known = {sc.revision for sc in script.walk_revisions()}
    if any(rev not in known for rev in revisions):
        return "newer"
    return "current" if revisions == [script.get_current_head()] else "older"


@cache
def script_directory() -> ScriptDirectory:
    """The migration scripts (their revisions and head)."""
    # Parsing the revision files is the slowest part of opening; they never change
    # while the process runs.
    return ScriptDirectory.from_config(alembic_config())


def schema_state(conn: Connection) -> tuple[set[str], list[str]]:
    """User tables in the file and the Alembic revision(s) it records."""
    tables = set(
        conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).scalars()
    )
    revisions: list[str] = []
    if "alembic_version" in tables:
        revisions = list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    return tables, revisions


def upgrade_to_head(conn: Connection) -> None:
    """Migrate the schema on `conn` to head inside the caller's transaction (opened under
    `foreign_keys_off`), then refuse the result if a row breaks a foreign key."""
    command.upgrade(alembic_config(conn), "head")
    check_foreign_keys(conn)


@contextmanager
def foreign_keys_off(conn: Connection) -> Iterator[None]:
    """Foreign keys not enforced on `conn` while migrations run (SQLite's own recipe for
    rebuilding a table: https://sqlite.org/lang_altertable.html#otheralter).

    A batch migration rebuilds a table by copying it and dropping the original; with
    foreign keys on, that DROP would cascade-delete the rows of child tables (`step_metric`
    -> `run`) or fail on them. The pragma is a no-op inside a transaction, so it is set
    on the DBAPI connection before the migration's BEGIN (SQLAlchemy would otherwise begin
    one first) and restored after it; `check_foreign_keys` checks the result instead.
    """
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        dbapi.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(conn: Connection) -> None:
    """Inside the migration's transaction: refuse to commit a schema whose rows break a
    foreign key (what enforcement would have caught during the migration)."""
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        shown = ", ".join(
            f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in broken[:5]
        )
        raise BemctlError(
            f"schema upgrade refused: {len(broken)} row(s) break a foreign key ({shown}); "
            "the store is left as it was"
        )
