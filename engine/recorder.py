"""What a protocol tells about its work, and what it may ask back: the engine's only door to
the store.

The runner and the protocols report runs opened, started, measured, evaluated and finished,
step losses, and the job's log lines through a `Recorder`; reusing an arm asks it for the
finished runs it holds. `store.recorder.SqliteRecorder` is the implementation every command
uses; a protocol can be unit-tested against an in-memory one (tests/engine/memory_recorder.py)
without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from store.models import Run
from store.stream import EventRow, PointRow


class StepSink(Protocol):
    """Loss-curve points of one run; `flush` makes every point added so far durable."""

    def add(self, step: int, loss: float, lr: float, elapsed_s: float) -> None: ...

    def flush(self) -> None: ...


class Recorder(Protocol):
    def open_experiment(self, name: str, spec_json: str, spec_hash: str, path: str) -> int:
        """The experiment's id (the same name and spec hash give the same experiment)."""
        ...

    def open_run(self, **fields: Any) -> int:
        """A new queued run (`store.queries.create_run`'s fields); its id."""
        ...

    def run_started(self, run_id: int) -> None: ...

    def measured(self, run_id: int, **fields: Any) -> None:
        """Fields of the run measured after it was opened (costs, counts, paths)."""
        ...

    def steps(self, run_id: int) -> StepSink: ...

    def evaluated(
        self,
        run_id: int,
        scores: dict[str, dict[str, float]],
        predictions: list[tuple[str, str, list[str], float | None]],
        order: Sequence[str],
    ) -> None:
        """Per-example scores (example -> metric -> value) in evaluation order."""
        ...

    def streamed(self, run_id: int, points: Sequence[PointRow], events: Sequence[EventRow]) -> None:
        """Stream timeline points and events of an online run (one live batch's, or a
        resumed stream's so far), durable together."""
        ...

    def finished(self, run_id: int, status: str, error: str | None = None) -> None: ...

    def note(self, kind: str, message: str, run_id: int | None = None) -> None:
        """A line for the job's event log (the console shows it); no-op outside a job."""
        ...

    # -- what reuse asks back ------------------------------------------------------------
    def run(self, run_id: int) -> Run | None: ...

    def finished_run_of_job(self, job_id: int, role: str, seed: int) -> Run | None: ...

    def finished_run_with_adapter_key(self, adapter_key: str) -> Run | None: ...

    def example_scores(self, run_id: int) -> dict[str, dict[str, float]]:
        """metric -> example id -> value, in evaluation order."""
        ...

    def predictions(self, run_id: int) -> dict[str, str]: ...
