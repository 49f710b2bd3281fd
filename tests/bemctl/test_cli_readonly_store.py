"""Commands on read-only stores: writers refuse in one line, readers work on a read-only copy.

The suite may run as root, whom chmod does not stop; see tests/store/permissions.py for how
the "enforced" test takes root's override away from its child process, and
tests/store/test_readonly.py for the open modes checked in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.store.permissions import owner_only, read_only, run_enforced


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def copied(ran_v1_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the session's finished project: bemctl.toml, specs and the store file only
    (no -wal/-shm: the writer closed it); cwd is set to it."""
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy2(ran_v1_project / "bemctl.toml", root / "bemctl.toml")
    shutil.copytree(ran_v1_project / "experiments", root / "experiments")
    (root / ".bemctl").mkdir()
    shutil.copy2(ran_v1_project / ".bemctl" / "bemctl.db", root / ".bemctl" / "bemctl.db")
    monkeypatch.chdir(root)
    for key in [k for k in os.environ if k.startswith("BEMCTL_")]:
        monkeypatch.delenv(key)
    return root


def test_queue_on_a_read_only_store_file_is_one_line(copied: Path, cli) -> None:
    db = copied / ".bemctl" / "bemctl.db"
    before = _digest(db)
    with read_only(db):
        result = cli("queue", "v1_dynrank", "--quick")
    assert result.code == 2
    assert result.err == (
        f"error: {db}: store is read-only (mode 0444; chmod u+w it); "
        "commands that only read (list, show, report) still work on it\n"
    )
    assert _digest(db) == before and sorted(os.listdir(db.parent)) == ["bemctl.db"]


def test_readers_work_on_a_read_only_copy(copied: Path, cli) -> None:
    db = copied / ".bemctl" / "bemctl.db"
    with read_only(db.parent, db):
        listing = cli("list")
        shown = cli("show", "1")
        report = cli("report", "--format", "json")
        doctor = cli("doctor")
        queued = cli("queue", "v1_dynrank", "--quick")
        assert sorted(os.listdir(db.parent)) == ["bemctl.db"]  # no -wal/-shm left behind
    assert listing.code == 0, listing.err
    assert "v1_dynrank" in listing.out and "succeeded" in listing.out
    assert shown.code == 0 and re.search(r"^ +status: succeeded$", shown.out, re.M)
    assert report.code == 0, report.err
    [record] = json.loads(report.out)
    assert record["experiment_id"] == "v1_dynrank"
    assert doctor.code == 0 and "(up to date)" in doctor.out
    assert queued.code == 2 and "store is read-only" in queued.err


def test_readers_work_on_a_read_only_copy_enforced(copied: Path) -> None:
    """Enforced permissions (a real user, or root without its override): `report` and
    `list` in a fresh process read the copy; `queue` refuses it."""
    if owner_only() is None:
        pytest.fail("root without setpriv: cannot take root's permission override away")
    db = copied / ".bemctl" / "bemctl.db"
    bemctl = [sys.executable, "-m", "bemctl"]
    with read_only(db.parent, db):
        report = run_enforced([*bemctl, "report", "--format", "json"], cwd=copied)
        listing = run_enforced([*bemctl, "list"], cwd=copied)
        queued = run_enforced([*bemctl, "queue", "v1_dynrank", "--quick"], cwd=copied)
        assert sorted(os.listdir(db.parent)) == ["bemctl.db"]
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)[0]["experiment_id"] == "v1_dynrank"
    assert listing.returncode == 0 and "v1_dynrank" in listing.stdout, listing.stderr
    assert queued.returncode == 2 and "store is read-only" in queued.stderr
    assert "Traceback" not in report.stderr + listing.stderr + queued.stderr
