"""How long work reports progress without knowing who is watching (rich bars, tests, a TUI)."""

from __future__ import annotations

from typing import Protocol


class Phase(Protocol):
    def advance(self, n: int = 1, info: str = "") -> None:
        """`n` more steps done; `info` (e.g. "loss 2.410") is shown beside the step count
        (a worker's job row keeps the latest non-empty one for `bemctl list` and the console).
        """
        ...

    def done(self) -> None: ...


class ProgressSink(Protocol):
    def phase(self, name: str, total: int) -> Phase: ...

    def log(self, message: str) -> None: ...


class _NullPhase:
    def advance(self, n: int = 1, info: str = "") -> None:
        pass

    def done(self) -> None:
        pass


class NullProgress:
    """Used when nobody watches (library calls, tests)."""

    def phase(self, name: str, total: int) -> Phase:
        return _NullPhase()

    def log(self, message: str) -> None:
        pass
