"""The console opens a store from an older bemctl by upgrading it, as any writer would."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from bemctl.tui.source import StoreSource
from store.schema import SCHEMA_HEAD, alembic_config


def test_older_store_is_upgraded_then_read(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
    engine.dispose()
    source = StoreSource(path, busy_timeout_s=1.0)
    store, problem = source.get()
    try:
        assert problem is None and store is not None and store.readonly
        with store.read_session() as session:
            revision = session.connection().exec_driver_sql(
                "SELECT version_num FROM alembic_version"
            )
            assert revision.scalar_one() == SCHEMA_HEAD
    finally:
        source.close()


def test_missing_store_is_reported_not_created(tmp_path: Path) -> None:
    source = StoreSource(tmp_path / "none.db", busy_timeout_s=1.0)
    store, problem = source.get()
    assert store is None and "no store yet" in problem
    assert not (tmp_path / "none.db").exists()
