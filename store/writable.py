"""Whether bemctl may write a path, as its owner meant it.

`os.access` answers for the real user, but root passes it whatever the mode bits say, so
root would silently overwrite a store or a report its owner made read-only. A file or
directory with no write bit at all was marked read-only on purpose: it counts as read-only
for root too. For everyone else `os.access` is the answer (it also knows ACLs and
read-only mounts).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def is_writable(path: Path) -> bool:
    """False if `path` is missing, has no write bit, or this user may not write it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(stat.S_IMODE(mode) & 0o222) and os.access(path, os.W_OK)


def mode_text(path: Path) -> str:
    """The permission bits as `0444`, for messages (empty if the path cannot be read)."""
    try:
        return f"{stat.S_IMODE(os.stat(path).st_mode):04o}"
    except OSError:
        return ""
