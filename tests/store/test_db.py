"""Store opening, pragmas, schema versioning, locking and transaction behaviour."""

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel, func, select

from store.db import Store
from store.errors import BemctlError
from store.models import Experiment
from store.schema import SCHEMA_HEAD, alembic_config

TABLES = {
    "batch",
    "job",
    "event",
    "experiment",
    "run",
    "step_metric",
    "example_score",
    "prediction",
    "comparison",
    "stat_result",
    "gate_decision",
    "stream_point",
    "stream_event",
}


def _experiment(name: str = "e") -> Experiment:
    return Experiment(name=name, spec_json="{}", spec_hash="h", spec_path="e.yaml")


def _count_experiments(store: Store) -> int:
    with store.read_session() as session:
        return session.exec(select(func.count()).select_from(Experiment)).one()


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


# -- fresh store and schema -------------------------------------------------------------


def test_fresh_store_has_schema_and_pragmas(store: Store, store_path: Path) -> None:
    assert store_path.is_file()
    with store.read_session() as session:
        conn = session.connection()
        tables = set(inspect(conn).get_table_names())
        assert tables == TABLES | {"alembic_version"}
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert versions == [(SCHEMA_HEAD,)]


def test_schema_head_matches_migration_scripts() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_migrations_match_models(store: Store, store_path: Path) -> None:
    engine = create_engine(f"sqlite:///{store_path}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_back(store: Store, store_path: Path) -> None:
    store.close()
    engine = create_engine(f"sqlite:///{store_path}")
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    with Store(store_path) as reopened:
        assert _count_experiments(reopened) == 0


def test_zero_byte_file_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with Store(path) as store:
        with store.session() as session:
            session.add(_experiment())
        assert _count_experiments(store) == 1


def test_reopen_keeps_data(store_path: Path) -> None:
    with Store(store_path) as store, store.session() as session:
        session.add(_experiment())
    with Store(store_path) as store:
        assert _count_experiments(store) == 1


def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    with store.session() as session:
        experiment = _experiment()
        experiment.created_at = datetime.fromisoformat("2025-01-02T03:04:05+02:00")
        session.add(experiment)
    with store.read_session() as session:
        loaded = session.exec(select(Experiment)).one()
    assert loaded.created_at == datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert loaded.created_at.tzinfo is UTC


def test_naive_timestamp_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        with store.session() as session:
            experiment = _experiment()
            experiment.created_at = datetime(2025, 1, 2)
            session.add(experiment)
    assert _count_experiments(store) == 0


# -- refusing databases that are not ours -------------------------------------------


def test_newer_schema_is_refused(store: Store, store_path: Path) -> None:
    store.close()
    _sql(store_path, "UPDATE alembic_version SET version_num = '9999'")
    expected = (
        f"{store_path}: database schema revision 9999 is newer than this bemctl knows "
        f"(head {SCHEMA_HEAD}); upgrade bemctl"
    )
    for readonly in (False, True):
        with pytest.raises(BemctlError) as info:
            Store(store_path, readonly=readonly)
        assert str(info.value) == expected


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _sql(path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    with pytest.raises(BemctlError) as info:
        Store(path)
    assert str(info.value) == (
        f"{path}: not a bemctl store (no schema version); "
        "move it away or set a different store path"
    )
    # Refusing must not have touched it.
    conn = sqlite3.connect(path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert tables == {"notes"}


@pytest.mark.parametrize("readonly", [False, True])
def test_text_file_is_refused(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(BemctlError) as info:
        Store(path, readonly=readonly)
    assert str(info.value) == f"{path}: cannot open store: file is not a database"


def test_readonly_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "bemctl.db"
    with pytest.raises(BemctlError) as info:
        Store(path, readonly=True)
    assert str(info.value) == f"{path}: no store yet (nothing has run)"
    assert not path.parent.exists()


def test_readonly_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "bemctl.db"
    path.touch()
    with pytest.raises(BemctlError, match="no store yet"):
        Store(path, readonly=True)


# -- locking and transactions ---------------------------------------------------------


def test_locked_store_gives_clean_error(store_path: Path) -> None:
    Store(store_path).close()
    with Store(store_path, busy_timeout_s=0.2) as store:
        other = sqlite3.connect(store_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(BemctlError) as info:
                with store.session() as session:
                    session.add(_experiment())
            waited = time.monotonic() - started
            assert str(info.value) == (
                f"{store_path}: store is locked by another process (waited 0.2s)"
            )
            assert 0.15 <= waited < 3
            other.execute("ROLLBACK")
        finally:
            other.close()
        # Once the other writer is gone the same store works again.
        with store.session() as session:
            session.add(_experiment())
        assert _count_experiments(store) == 1


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_session_rolls_back_on_exception(store: Store, error: BaseException) -> None:
    with pytest.raises(type(error)):
        with store.session() as session:
            session.add(_experiment("first"))
            session.flush()  # the row really reached the database before the error
            raise error
    assert _count_experiments(store) == 0


def test_session_commits_and_objects_stay_readable(store: Store) -> None:
    with store.session() as session:
        experiment = _experiment()
        session.add(experiment)
    # expire_on_commit=False: attributes are usable after the session is gone.
    assert experiment.id is not None
    assert experiment.name == "e"


def test_session_holds_write_lock_from_the_start(store: Store, store_path: Path) -> None:
    other = sqlite3.connect(store_path, timeout=0, isolation_level=None)
    try:
        with store.session():
            # No statement issued yet, but BEGIN IMMEDIATE already took the lock.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_readonly_store_reads_while_another_connection_writes(store_path: Path) -> None:
    with Store(store_path) as store, store.session() as session:
        session.add(_experiment("committed"))
    writer = sqlite3.connect(store_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO experiment (name, spec_json, spec_hash, spec_path, created_at) "
            "VALUES ('pending', '{}', 'h2', 'p.yaml', '2025-01-01 00:00:00')"
        )
        with Store(store_path, readonly=True, busy_timeout_s=0.2) as readonly:
            with readonly.read_session() as session:
                names = session.exec(select(Experiment.name)).all()
            assert names == ["committed"]
            with pytest.raises(RuntimeError, match="read-only"):
                with readonly.session():
                    pass
        writer.execute("COMMIT")
    finally:
        writer.close()
    with Store(store_path, readonly=True) as readonly:
        assert _count_experiments(readonly) == 2
