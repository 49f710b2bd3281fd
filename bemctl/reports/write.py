"""Writing a report file: atomically, so a reader (a browser refreshing the HTML, a CI step
picking up the CSV) never sees half of one, and shareable (mkstemp would leave it 0600)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bemctl.errors import BemctlError


def write_report(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise BemctlError(f"{path}: cannot write report: {exc.strerror}") from None
