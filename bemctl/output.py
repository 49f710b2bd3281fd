"""The terminal streams every command writes to, in one place so `bemctl.exit_handling`
can tell a failing standard output (one StdoutError, exit 1) from a failing command."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

from store.errors import BemctlError


class StdoutError(BemctlError):
    """Standard output cannot be written (a full disk, /dev/full, a closed pipe)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to standard output: {exc.strerror}", exit_code=1)
        self.errno = exc.errno


class _Stdout:
    """sys.stdout as found at each call (tests swap it), whose write errors become one
    StdoutError for `main` instead of a traceback from deep inside Rich."""

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except OSError as exc:
            raise StdoutError(exc) from None

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except OSError as exc:
            raise StdoutError(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


stdout = _Stdout()
out = Console(file=stdout, width=None if sys.stdout.isatty() else 140)  # type: ignore[arg-type]
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


def say(message: str) -> None:
    """One message on stderr, as is (no markup, no highlighting)."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)
