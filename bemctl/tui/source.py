"""The console's read-only store, opened lazily: before anything has run there is none.

`bemctl tui` may start before the first `bemctl queue` (or before the console's own
enqueue creates the file), so the store is looked for on every tick until it opens, and
dropped again if a read fails (the file was deleted or replaced), to be reopened later.
"""

from __future__ import annotations

import threading
from pathlib import Path

from store.db import Store
from store.errors import BemctlError


class StoreSource:
    """Hands the poll thread a read-only Store, or the one-line reason there is none."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> tuple[Store | None, str | None]:
        with self._lock:
            if self._store is None:
                if not self.path.is_file():
                    return None, f"no store yet at {self.path}"
                try:
                    self._store = self._open()
                except BemctlError as exc:  # empty file being created, locked...
                    return None, str(exc)
            return self._store, None

    def _open(self) -> Store:
        try:
            return Store(self.path, readonly=True, busy_timeout_s=self.busy_timeout_s)
        except BemctlError as exc:
            if "is older than this bemctl" not in str(exc):
                raise
        # A store from an older bemctl: the console writes too (enqueue, cancel), so it
        # may upgrade the schema, as any write command would; then read as usual.
        Store(self.path, busy_timeout_s=self.busy_timeout_s).close()
        return Store(self.path, readonly=True, busy_timeout_s=self.busy_timeout_s)

    def reset(self) -> None:
        """Forget the store (after a failed read); the next `get` opens it afresh."""
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = None

    def close(self) -> None:
        """Release the connection when the console exits."""
        self.reset()
