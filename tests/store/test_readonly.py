"""Read-only stores: writers refuse them in one line; readers read a read-only copy.

The suite may run as root, for whom chmod stops nothing. So each test checks what bemctl
decides from the permission bits (a write store refuses, a reader picks `immutable=1`
and leaves no -wal/-shm behind) in-process, and the tests marked "enforced" repeat the
real thing in a child process that root's permission override has been taken from
(tests/store/permissions.py), where SQLite itself would fail without bemctl's care.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from store.db import Store
from store.errors import BemctlError
from store.models import Batch
from store.schema import SCHEMA_HEAD, SchemaStatus, inspect_schema
from tests.store.permissions import owner_only, read_only, run_python


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A closed store (so no -wal/-shm files) holding one batch row, alone in its dir."""
    path = tmp_path / "copy" / "bemctl.db"
    with Store(path) as store, store.session() as session:
        session.add(Batch(id="b1"))
    assert sorted(os.listdir(path.parent)) == ["bemctl.db"]
    return path


def _batches(store: Store) -> list[str]:
    with store.read_session() as session:
        return [b.id for b in session.exec(select(Batch)).all()]


# -- writers ------------------------------------------------------------------------------


def test_a_read_only_store_file_is_refused_for_writing(filled: Path) -> None:
    before = _digest(filled)
    with read_only(filled), pytest.raises(BemctlError) as info:
        Store(filled)
    assert str(info.value) == (
        f"{filled}: store is read-only (mode 0444; chmod u+w it); "
        "commands that only read (list, show, report) still work on it"
    )
    assert _digest(filled) == before
    assert sorted(os.listdir(filled.parent)) == ["bemctl.db"]


def test_a_store_in_a_read_only_directory_is_refused_for_writing(filled: Path) -> None:
    with read_only(filled.parent), pytest.raises(BemctlError) as info:
        Store(filled)
    assert "store is read-only (its directory" in str(info.value)
    assert "bemctl.db-wal and -shm" in str(info.value)
    with read_only(filled.parent), pytest.raises(BemctlError, match="store is read-only"):
        Store(filled.parent / "new.db")  # nor is a new store created there
    assert not (filled.parent / "new.db").exists()


def test_sqlite_refusing_a_write_is_the_same_one_line_error(filled: Path) -> None:
    """Enforced: a store SQLite can only open read-only that bemctl's own check missed (a
    read-only mount, an ACL): the write fails inside SQLite and is reported the same way."""
    if owner_only() is None:
        pytest.fail("root without setpriv: cannot take root's permission override away")
    code = textwrap.dedent(
        f"""
        import store.db
        from store.errors import BemctlError
        from store.models import Batch
        store.db.is_writable = lambda path: True  # bemctl's check misses it
        s = store.db.Store({str(filled)!r})
        try:
            with s.session() as session:
                session.add(Batch(id="b2"))
        except BemctlError as exc:
            print(exc)
        """
    )
    with read_only(filled):
        proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"{filled}: store is read-only (SQLite cannot write it); "
        "commands that only read (list, show, report) still work on it"
    )


# -- readers ------------------------------------------------------------------------------


def test_reader_in_a_writable_directory_opens_mode_ro(filled: Path) -> None:
    with read_only(filled), Store(filled, readonly=True) as store:
        assert store.open_mode == "ro"
        assert _batches(store) == ["b1"]


def test_reader_of_a_read_only_copy_opens_immutable(filled: Path) -> None:
    """Directory 0555, file 0444: `mode=ro` would need to create bemctl.db-shm; the
    reader opens `immutable=1` instead and leaves the directory as it found it."""
    before = _digest(filled)
    with read_only(filled.parent, filled):
        with Store(filled, readonly=True) as store:
            assert store.open_mode == "immutable"
            assert _batches(store) == ["b1"]
        assert sorted(os.listdir(filled.parent)) == ["bemctl.db"]
        assert inspect_schema(filled) == SchemaStatus(SCHEMA_HEAD, "current")
        assert sorted(os.listdir(filled.parent)) == ["bemctl.db"]
    assert _digest(filled) == before


def test_reader_of_a_read_only_copy_enforced(filled: Path) -> None:
    """Enforced: the plain `mode=ro` open really fails there (SQLite cannot create the
    -shm index), and the Store's reader works."""
    if owner_only() is None:
        pytest.fail("root without setpriv: cannot take root's permission override away")
    code = textwrap.dedent(
        f"""
        import sqlite3
        from store.db import Store
        from store.models import Batch
        from sqlmodel import select
        try:
            conn = sqlite3.connect("file:{filled}?mode=ro", uri=True)
            conn.execute("SELECT count(*) FROM batch").fetchone()
            print("plain mode=ro: ok")
        except sqlite3.Error as exc:
            print("plain mode=ro:", exc)
        with Store({str(filled)!r}, readonly=True) as store, store.read_session() as s:
            print(store.open_mode, [b.id for b in s.exec(select(Batch)).all()])
        """
    )
    with read_only(filled.parent, filled):
        proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    plain, ours = proc.stdout.strip().splitlines()
    assert plain.startswith("plain mode=ro: ") and plain != "plain mode=ro: ok"
    assert ours == "immutable ['b1']"
    assert sorted(os.listdir(filled.parent)) == ["bemctl.db"]


def test_a_copy_with_changes_left_in_its_wal_is_refused(tmp_path: Path) -> None:
    """An immutable reader would ignore a -wal file's commits: refuse, say how to fix."""
    live = tmp_path / "live" / "bemctl.db"
    Store(live).close()
    writer = sqlite3.connect(live)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO batch (id, created_at, status) VALUES ('b9', '', 'open')")
        writer.commit()
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in ("bemctl.db", "bemctl.db-wal"):  # a copy taken mid-write, no -shm
            shutil.copy2(live.parent / name, copy / name)
    finally:
        writer.close()
    assert (copy / "bemctl.db-wal").stat().st_size > 0
    with read_only(copy), pytest.raises(BemctlError) as info:
        Store(copy / "bemctl.db", readonly=True)
    assert "bemctl.db-wal holds changes not yet in the store" in str(info.value)
    assert "make the directory writable once" in str(info.value)
    with Store(copy / "bemctl.db", readonly=True) as store, store.read_session() as session:
        # writable again: it reads, the WAL's commit included
        assert session.exec(text("SELECT id FROM batch")).all() == [("b9",)]


# -- schema state (shared by the Store and `bemctl doctor`) -------------------------------


def _set_revision(path: Path, revision: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("revision", "state"), [(SCHEMA_HEAD, "current"), ("0005", "older"), ("9999", "newer")]
)
def test_inspect_schema_states(filled: Path, revision: str, state: str) -> None:
    _set_revision(filled, revision)
    status = inspect_schema(filled)
    assert status == SchemaStatus(revision, state)  # type: ignore[arg-type]
    if state == "newer":
        assert "every command refuses it; upgrade bemctl" in status.describe()
        with pytest.raises(BemctlError, match="newer than this bemctl"):
            Store(filled)
        with pytest.raises(BemctlError, match="newer than this bemctl"):
            Store(filled, readonly=True)
    if state == "older":
        assert "the next write command upgrades it" in status.describe()


def test_inspect_schema_foreign_empty_and_garbage(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    assert inspect_schema(foreign) == SchemaStatus(None, "foreign")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert inspect_schema(empty) == SchemaStatus(None, "empty")
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database, just text " * 100)
    with pytest.raises(BemctlError, match="not readable as a bemctl store"):
        inspect_schema(garbage)
    assert stat.S_ISREG(garbage.stat().st_mode)
