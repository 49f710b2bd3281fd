"""The SQLite implementation of `engine.recorder.Recorder`, over `store.queries`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from store import job_log, queries, stream
from store.db import Store
from store.models import Run


class StepWriter:
    """Buffers loss-curve points and writes them in one transaction every `interval_s`.

    A commit costs ~60x a row: one transaction per step caps ingest at ~4,000 rows/s,
    batches of 200 reach ~190,000 (bench/store.py). Half a second of delay is invisible
    in a console; `max_rows` bounds the buffer when steps are very fast.
    """

    def __init__(
        self, store: Store, run_id: int, interval_s: float = 0.5, max_rows: int = 1000
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval_s = interval_s
        self.max_rows = max_rows
        self._rows: list[tuple[int, float, float, float]] = []
        self._last = time.monotonic()

    def add(self, step: int, loss: float, lr: float, elapsed_s: float) -> None:
        self._rows.append((step, loss, lr, elapsed_s))
        if len(self._rows) >= self.max_rows or time.monotonic() - self._last >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            queries.record_steps(self.store, self.run_id, self._rows)
            self._rows = []
        self._last = time.monotonic()


class SqliteRecorder:
    """Writes what the engine reports into one store; `job_id`: the job whose event log
    `note` appends to (None: a direct call, notes are not stored)."""

    def __init__(self, store: Store, job_id: int | None = None) -> None:
        self.store = store
        self.job_id = job_id

    def open_experiment(self, name: str, spec_json: str, spec_hash: str, path: str) -> int:
        experiment = queries.get_or_create_experiment(self.store, name, spec_json, spec_hash, path)
        assert experiment.id is not None
        return experiment.id

    def open_run(self, **fields: Any) -> int:
        run = queries.create_run(self.store, **fields)
        assert run.id is not None
        return run.id

    def run_started(self, run_id: int) -> None:
        queries.mark_run_running(self.store, run_id)

    def measured(self, run_id: int, **fields: Any) -> None:
        queries.update_run(self.store, run_id, **fields)

    def steps(self, run_id: int) -> StepWriter:
        return StepWriter(self.store, run_id)

    def evaluated(
        self,
        run_id: int,
        scores: dict[str, dict[str, float]],
        predictions: list[tuple[str, str, list[str], float | None]],
        order: Sequence[str],
    ) -> None:
        queries.record_evaluation(self.store, run_id, scores, predictions, order=order)

    def streamed(
        self,
        run_id: int,
        points: Sequence[stream.PointRow],
        events: Sequence[stream.EventRow],
    ) -> None:
        stream.record_stream(self.store, run_id, points, events)

    def finished(self, run_id: int, status: str, error: str | None = None) -> None:
        queries.mark_run_finished(self.store, run_id, status, error)

    def note(self, kind: str, message: str, run_id: int | None = None) -> None:
        if self.job_id is not None:
            job_log.log_event(self.store, self.job_id, kind, message, run_id)

    def run(self, run_id: int) -> Run | None:
        return queries.get_run(self.store, run_id)

    def finished_run_of_job(self, job_id: int, role: str, seed: int) -> Run | None:
        return queries.finished_run_of_job(self.store, job_id, role, seed)

    def finished_run_with_adapter_key(self, adapter_key: str) -> Run | None:
        return queries.finished_run_with_adapter_key(self.store, adapter_key)

    def example_scores(self, run_id: int) -> dict[str, dict[str, float]]:
        return queries.example_scores(self.store, run_id)

    def predictions(self, run_id: int) -> dict[str, str]:
        return queries.predictions(self.store, run_id)
