"""Writing a report to the path the user named, with the permissions it has.

A regular file is replaced atomically (a temporary file beside it, renamed over it), so a
reader (a browser refreshing the HTML, a CI step picking up the CSV) never sees half of
one; the new file keeps the old one's permission bits (and owner, where we may set it),
and a new file gets the usual 0666 & ~umask (mkstemp alone would leave it 0600).

Anything else is written through, never replaced: a named pipe or a character device
(/dev/stdout, /dev/full, a terminal) is opened and written like `>` in a shell would, since
renaming over it would swap the pipe for a regular file its reader never sees. A symlink
is followed, as `>` follows it: the file it points to gets the report and the link stays.

Refused with one line: a read-only file (judged by its permission bits too, since root
may write anything), a directory, a parent directory that does not exist. Exit 2 for those
(the user can fix the path), 1 when the write itself fails (ENOSPC, EIO).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from store.errors import BemctlError
from store.writable import is_writable, mode_text


def write_report(path: Path, text: str) -> None:
    target = Path(os.path.realpath(path))  # follow symlinks: write what the link names
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot write report: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise BemctlError(f"{path}: cannot write report: is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_through(path, target, text)
        return
    if st is not None and not is_writable(target):
        raise BemctlError(
            f"{path}: not overwriting a read-only file (mode {mode_text(target)}); "
            "choose another --output or make it writable"
        )
    if not target.parent.is_dir():
        raise BemctlError(f"{path}: cannot write report: directory {target.parent} does not exist")
    if not is_writable(target.parent):
        if st is None:
            raise BemctlError(
                f"{path}: cannot write report: directory {target.parent} is not writable"
            )
        # The file may be written but no temporary can be made beside it: write in place.
        _write_through(path, target, text)
        return
    _replace(path, target, text, st)


def _write_through(path: Path, target: Path, text: str) -> None:
    """Open the existing target and write into it (pipes, devices, in-place files)."""
    try:
        fh = open(target, "w", encoding="utf-8")  # not `with open()`: close() errors matter
    except OSError as exc:
        raise BemctlError(f"{path}: cannot write report: {exc.strerror}") from None
    try:
        with fh:
            fh.write(text)
    except OSError as exc:  # ENOSPC on /dev/full shows here (at flush or close)
        raise BemctlError(f"{path}: cannot write report: {exc.strerror}", exit_code=1) from None


def _replace(path: Path, target: Path, text: str, st: os.stat_result | None) -> None:
    """Write a temporary file beside `target` and rename it over it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise BemctlError(f"{path}: cannot write report: {exc.strerror}") from None
    try:
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise BemctlError(f"{path}: cannot write report: {exc.strerror}", exit_code=1) from None
        try:
            if st is None:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            else:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
                with contextlib.suppress(OSError):  # only root may give a file away
                    os.chown(tmp, st.st_uid, st.st_gid)
            os.replace(tmp, target)
        except OSError as exc:
            raise BemctlError(f"{path}: cannot write report: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
