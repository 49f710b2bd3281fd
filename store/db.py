"""Opening the SQLite store: connection pragmas, transactions, locking and read-only readers.

Several bemctl processes (a training run, a `status` watcher, a second run) share one
database file, so the connection setup is about concurrency: WAL lets readers proceed
while a writer commits, and every write transaction starts with `BEGIN IMMEDIATE` so
two writers queue on the busy timeout up front instead of deadlocking halfway through
(a deferred transaction that later tries to upgrade to a write lock fails immediately).

Opening a store also checks its schema and upgrades it to head; what a schema revision
means and how migrations run is `store.schema`'s job (`SCHEMA_HEAD`, `alembic_config` and
`inspect_schema` are re-exported here, where callers outside the store still import them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from store.errors import BemctlError
from store.readonly import reader_uri
from store.schema import (
    SCHEMA_HEAD,
    alembic_config,
    classify_schema,
    foreign_keys_off,
    inspect_schema,
    schema_state,
    script_directory,
    upgrade_to_head,
)
from store.writable import is_writable, mode_text

__all__ = [
    "Store",
    # re-exported from store.schema (bemctl/cli.py imports inspect_schema from here)
    "SCHEMA_HEAD",
    "alembic_config",
    "inspect_schema",
]

# Execution option read by the "begin" hook: which BEGIN flavour a connection emits.
_BEGIN_MODE = "bemctl_begin_mode"


class Store:
    """One bemctl SQLite database: open it, check/upgrade its schema, hand out sessions.

    `readonly=True` opens the file read-only (see `reader_uri`), for status/report
    commands that must never create, migrate or lock the store; they work on a read-only
    copy too. A write store refuses a file or directory it may not write with one line,
    before SQLite gets to fail halfway through a command.
    """

    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.busy_timeout_s = busy_timeout_s
        self.open_mode = "rw"  # "ro" or "immutable" for a reader: see reader_uri
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
            self._check_writable()
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

    def _check_writable(self) -> None:
        """A write command on a store it may not write: say so now, in one line."""
        if self.path.exists() and not is_writable(self.path):
            raise self._readonly_error(f"mode {mode_text(self.path)}; chmod u+w it")
        if not is_writable(self.path.parent):
            raise self._readonly_error(
                f"its directory {self.path.parent} is not writable, and SQLite keeps "
                f"{self.path.name}-wal and -shm there"
            )

    def _readonly_error(self, why: str) -> BemctlError:
        return BemctlError(
            f"{self.path}: store is read-only ({why}); "
            "commands that only read (list, show, report) still work on it"
        )

    # -- engine ---------------------------------------------------------------------

    def _create_engine(self, single: bool = False) -> Engine:
        if self.readonly:
            # URI form is the only way to ask SQLite for a read-only open.
            database, self.open_mode = reader_uri(self.path)
            url = URL.create("sqlite", database=database, query={"uri": "true"})
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
        """Turn SQLITE_BUSY (after the busy timeout) and SQLITE_READONLY (a store made
        read-only under a running command, a read-only mount) into user-facing errors."""
        try:
            yield
        except sa_exc.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked_error() from exc
            if _is_readonly(exc):
                raise self._readonly_error("SQLite cannot write it") from exc
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
            if _is_readonly(exc) and not self.readonly:
                raise self._readonly_error("SQLite cannot write it") from exc
            reason = str(getattr(exc, "orig", None) or exc)
            raise BemctlError(f"{self.path}: cannot open store: {reason}") from exc

    # -- schema ---------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Refuse foreign or newer databases; create or upgrade ours to head."""
        with self._map_open_errors():
            with self._engine.connect() as conn:
                tables, revisions = schema_state(conn)
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
            with self._write_engine.connect() as conn, foreign_keys_off(conn):
                with conn.begin():
                    tables, revisions = schema_state(conn)
                    if self._needs_upgrade(tables, revisions):
                        upgrade_to_head(conn)

    def _needs_upgrade(self, tables: set[str], revisions: list[str]) -> bool:
        state = classify_schema(tables, revisions)
        if state == "foreign":
            raise BemctlError(
                f"{self.path}: not a bemctl store (no schema version); "
                "move it away or set a different store path"
            )
        if state == "newer":
            head = script_directory().get_current_head()
            raise BemctlError(
                f"{self.path}: database schema revision {', '.join(revisions)} is newer than "
                f"this bemctl knows (head {head}); upgrade bemctl"
            )
        return state != "current"

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


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(getattr(exc, "orig", None) or exc)


def _is_readonly(exc: BaseException) -> bool:
    return "readonly database" in str(getattr(exc, "orig", None) or exc)
