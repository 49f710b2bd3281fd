"""`write_report`: the path the user named, with the permissions it has.

Root may write any file, so "read-only" is asserted through the permission bits (and the
content and mode left unchanged), never by waiting for an EACCES that root never gets.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from bemctl.reports.write import write_report
from store.errors import BemctlError

TEXT = "# report\n" + "row\n" * 2000  # larger than a pipe's atomic write, smaller than its buffer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_new_file_gets_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_report(tmp_path / "r.md", TEXT)
    finally:
        os.umask(old)
    assert (tmp_path / "r.md").read_text() == TEXT
    assert _mode(tmp_path / "r.md") == 0o644
    assert os.listdir(tmp_path) == ["r.md"]  # no temporary left behind


def test_existing_file_is_replaced_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    target.write_text("old")
    target.chmod(0o640)
    write_report(target, TEXT)
    assert target.read_text() == TEXT
    assert _mode(target) == 0o640
    assert os.listdir(tmp_path) == ["r.md"]


def test_read_only_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    target.write_text("keep me")
    target.chmod(0o444)
    with pytest.raises(BemctlError) as info:
        write_report(target, TEXT)
    assert str(info.value) == (
        f"{target}: not overwriting a read-only file (mode 0444); "
        "choose another --output or make it writable"
    )
    assert info.value.exit_code == 2
    assert target.read_text() == "keep me" and _mode(target) == 0o444
    assert os.listdir(tmp_path) == ["r.md"]


def test_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:  # blocks until the writer opens it
            received.append(fh.read())

    reader = threading.Thread(target=read)
    reader.start()
    write_report(fifo, TEXT)
    reader.join(timeout=60)
    assert not reader.is_alive()
    assert received == [TEXT.encode()]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the pipe, not a regular file
    assert os.listdir(tmp_path) == ["pipe"]


def test_dev_full_is_a_write_error_not_a_replaced_device() -> None:
    with pytest.raises(BemctlError) as info:
        write_report(Path("/dev/full"), TEXT)
    assert str(info.value) == "/dev/full: cannot write report: No space left on device"
    assert info.value.exit_code == 1
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_directory_and_missing_parent_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BemctlError, match=r": cannot write report: is a directory$"):
        write_report(tmp_path, TEXT)
    missing = tmp_path / "no" / "such" / "r.md"
    with pytest.raises(BemctlError) as info:
        write_report(missing, TEXT)
    assert str(info.value) == (
        f"{missing}: cannot write report: directory {missing.parent} does not exist"
    )
    assert not (tmp_path / "no").exists()  # not created behind the user's back


def test_symlink_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    """Like `>` in a shell: the file the link names gets the report, the link stays."""
    real = tmp_path / "real.md"
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "link.md"
    link.symlink_to(real)
    write_report(link, TEXT)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == TEXT and _mode(real) == 0o600


def test_symlink_to_a_read_only_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    real.write_text("keep")
    real.chmod(0o444)
    link = tmp_path / "link.md"
    link.symlink_to(real)
    with pytest.raises(BemctlError, match="not overwriting a read-only file"):
        write_report(link, TEXT)
    assert real.read_text() == "keep" and link.is_symlink()


def test_writable_file_in_a_read_only_directory_is_written_in_place(tmp_path: Path) -> None:
    """No temporary can be made beside it, but the file itself may be written."""
    directory = tmp_path / "ro"
    directory.mkdir()
    target = directory / "r.md"
    target.write_text("old")
    inode = target.stat().st_ino
    directory.chmod(0o555)
    try:
        write_report(target, TEXT)
        with pytest.raises(BemctlError, match="directory .* is not writable"):
            write_report(directory / "new.md", TEXT)
    finally:
        directory.chmod(0o755)
    assert target.read_text() == TEXT and target.stat().st_ino == inode
    assert os.listdir(directory) == ["r.md"]


def test_an_os_error_while_replacing_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EACCES from the rename (root never sees one from chmod): one line, no temporary."""

    def denied(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(BemctlError) as info:
        write_report(tmp_path / "r.md", TEXT)
    assert str(info.value) == f"{tmp_path / 'r.md'}: cannot write report: Permission denied"
    assert os.listdir(tmp_path) == []
