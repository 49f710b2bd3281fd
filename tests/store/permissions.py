"""Making file permissions real in tests, also when the suite runs as root.

Root ignores mode bits (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so `chmod 0444` alone stops
nothing and a test of "read-only" would pass for the wrong reason. Two tools:

- `owner_only()`: a command prefix that runs a child process without those capabilities
  (util-linux `setpriv` drops them from the bounding set; for root that also empties them
  from the permitted set at exec), so the child is held to the owner bits like any user.
  Not root: no prefix is needed. Root without setpriv: None (the caller then asserts what
  it can without it and says so).
- `read_only(path)`: chmod a file to 0444 or a directory to 0555 and restore it afterwards,
  so pytest can clean up.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DROP = "-dac_override,-dac_read_search,-fowner"


def owner_only() -> list[str] | None:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return None if setpriv is None else [setpriv, f"--bounding-set={DROP}", "--"]


def run_enforced(argv: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `argv` with permissions enforced (see owner_only), the worktree first on
    sys.path as the suite imports it."""
    prefix = owner_only()
    assert prefix is not None, "permissions cannot be enforced here"
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [*prefix, *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_python(code: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_enforced([sys.executable, "-c", code], cwd=cwd)


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in paths}
    try:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        yield
    finally:
        for p, mode in before.items():
            p.chmod(mode)
