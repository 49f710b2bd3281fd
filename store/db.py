"""Opening the SQLite store: connection pragmas, transactions and schema migrations.

Several bemctl processes (a training run, a `status` watcher, a second run) share one
database file, so the connection setup is about concurrency: WAL lets readers proceed
while a writer commits, and every write transaction starts with `BEGIN IMMEDIATE` so
two writers queue on the busy timeout up front instead of deadlocking halfway through
(a deferred transaction that later tries to upgrade to a write lock fails immediately).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from bemctl.errors import BemctlError

SCHEMA_HEAD = "0006"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option read by the "begin" hook: which BEGIN flavour a connection emits.
_BEGIN_MODE = "bemctl_begin_mode"


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


class Store:
    """One bemctl SQLite database: open it, check/upgrade its schema, hand out sessions.

    `readonly=True` opens the file with SQLite's `mode=ro`, for status/report commands
    that must never create, migrate or lock the store.
    """

    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.busy_timeout_s = busy_timeout_s
        if readonly:
            if not self.path.is_file():
                raise BemctlError(f"{self.path}: no store yet (nothing has run)")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BemctlError(
                    f"{self.path}: cannot create store directory: {exc.strerror}"
                ) from exc
        self._engine = self._create_engine()
        # Writes go through their own engine with ONE pooled connection whose transactions
        # BEGIN IMMEDIATE: one write connection per process, so threads of one process (a
        # worker's heartbeat, its trainer) queue on the pool instead of on SQLite's lock.
        # Reads and the readonly store use the main engine and plain (deferred) BEGIN.
        self._write_engine = (
            self._engine
            if readonly
            else self._create_engine(single=True).execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        )
        try:
            self._ensure_schema()
        except BaseException:
            self.close()
            raise

    # -- engine ---------------------------------------------------------------------

    def _create_engine(self, single: bool = False) -> Engine:
        if self.readonly:
            # URI form is the only way to ask SQLite for a read-only open; quote() keeps
            # '?', '#' and '%' in the path from being parsed as URI syntax.
            database = "file:" + quote(str(self.path.resolve()))
            url = URL.create("sqlite", database=database, query={"mode": "ro", "uri": "true"})
        else:
            url = URL.create("sqlite", database=str(self.path))
        engine = create_engine(
            url,
            # check_same_thread=False: the pool hands a connection to one thread at a
            # time, so a progress thread may write steps while the main thread reads.
            connect_args={"timeout": self.busy_timeout_s, "check_same_thread": False},
            **(
                # a nested write session in one thread would wait here forever: fail loudly
                {"pool_size": 1, "max_overflow": 0, "pool_timeout": self.busy_timeout_s + 30}
                if single
                else {}
            ),
        )
        busy_ms = int(self.busy_timeout_s * 1000)
        readonly = self.readonly

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            # Take BEGIN away from the sqlite3 module (its legacy mode skips BEGIN for
            # SELECT and DDL); the "begin" hook below emits it instead.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
                if not readonly:
                    cursor.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode; only an OS
                # crash can lose the last commits, which a rerun recovers.
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    # -- errors ---------------------------------------------------------------------

    def _locked_error(self) -> BemctlError:
        return BemctlError(
            f"{self.path}: store is locked by another process (waited {self.busy_timeout_s:g}s)"
        )

    @contextmanager
    def _map_locked(self) -> Iterator[None]:
        """Turn SQLITE_BUSY (after the busy timeout) into the user-facing error."""
        try:
            yield
        except sa_exc.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked_error() from exc
            raise

    @contextmanager
    def _map_open_errors(self) -> Iterator[None]:
        """While opening, any SQLite-level failure is about the file, not a bug."""
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.DatabaseError, sqlite3.Error) as exc:
            if isinstance(exc, sa_exc.IntegrityError):
                raise
            if _is_locked(exc):
                raise self._locked_error() from exc
            reason = str(getattr(exc, "orig", None) or exc)
            raise BemctlError(f"{self.path}: cannot open store: {reason}") from exc

    # -- schema ---------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Refuse foreign or newer databases; create or upgrade ours to head."""
        with self._map_open_errors():
            with self._engine.connect() as conn:
                tables, revisions = _schema_state(conn)
            if not self._needs_upgrade(tables, revisions):
                return
            if self.readonly:
                if not tables - {"alembic_version"}:
                    raise BemctlError(f"{self.path}: no store yet (nothing has run)")
                raise BemctlError(
                    f"{self.path}: database schema revision {revisions[0]} is older than "
                    f"this bemctl (head {SCHEMA_HEAD}); run a write command to upgrade it"
                )
            # Re-check under the write lock: a concurrent process may have just created
            # or upgraded the schema, and the upgrade must not run twice.
            with self._write_engine.begin() as conn:
                tables, revisions = _schema_state(conn)
                if self._needs_upgrade(tables, revisions):
                    command.upgrade(alembic_config(conn), "head")

    def _needs_upgrade(self, tables: set[str], revisions: list[str]) -> bool:
        script = _script_directory()
        head = script.get_current_head()
        if not revisions:
            if tables - {"alembic_version"}:
                raise BemctlError(
                    f"{self.path}: not a bemctl store (no schema version); "
                    "move it away or set a different store path"
                )
            return True
        known = {sc.revision for sc in script.walk_revisions()}
        for rev in revisions:
            if rev not in known:
                raise BemctlError(
                    f"{self.path}: database schema revision {rev} is newer than this bemctl "
                    f"knows (head {head}); upgrade bemctl"
                )
        return revisions != [head]

    # -- sessions -------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: commit on normal exit, roll back on any exception.

        The write lock is taken on entry (BEGIN IMMEDIATE), so waiting for another
        writer happens here and not after half the work is done. KeyboardInterrupt
        rolls back too: a Ctrl-C never leaves a half-written comparison behind.
        """
        if self.readonly:
            raise RuntimeError(f"{self.path}: store was opened read-only")
        session = Session(self._write_engine, expire_on_commit=False)
        try:
            with self._map_locked():
                session.connection()
                yield session
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A deferred (snapshot) transaction for reads; anything written is discarded.

        In WAL mode it neither waits for nor blocks a writer.
        """
        session = Session(self._engine, expire_on_commit=False)
        try:
            with self._map_locked():
                yield session
        finally:
            session.close()

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections (which also checkpoints and removes the WAL file)."""
        if self._write_engine is not self._engine:
            self._write_engine.engine.dispose()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@cache
def _script_directory() -> ScriptDirectory:
    # Parsing the revision files is the slowest part of opening; they never change
    # while the process runs.
    return ScriptDirectory.from_config(alembic_config())


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(getattr(exc, "orig", None) or exc)


def _schema_state(conn: Connection) -> tuple[set[str], list[str]]:
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
