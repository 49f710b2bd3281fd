"""An in-memory `engine.recorder.Recorder`: a protocol under test, without a database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.models import Run


class MemorySteps:
    def __init__(self, sink: list[tuple[int, float, float, float]]) -> None:
        self.sink = sink
        self.flushed = 0

    def add(self, step: int, loss: float, lr: float, elapsed_s: float) -> None:
        self.sink.append((step, loss, lr, elapsed_s))

    def flush(self) -> None:
        self.flushed = len(self.sink)


class MemoryRecorder:
    def __init__(self) -> None:
        self.experiments: dict[int, dict[str, str]] = {}
        self.runs: dict[int, Run] = {}
        self.steps_of: dict[int, list[tuple[int, float, float, float]]] = {}
        self.scores: dict[int, dict[str, dict[str, float]]] = {}
        self.outputs: dict[int, dict[str, str]] = {}
        self.notes: list[tuple[str, str, int | None]] = []
        self.stream_of: dict[int, tuple[list, list]] = {}

    def open_experiment(self, name: str, spec_json: str, spec_hash: str, path: str) -> int:
        for experiment_id, e in self.experiments.items():
            if (e["name"], e["spec_hash"]) == (name, spec_hash):
                return experiment_id
        experiment_id = len(self.experiments) + 1
        self.experiments[experiment_id] = {"name": name, "spec_hash": spec_hash, "path": path}
        return experiment_id

    def open_run(self, **fields: Any) -> int:
        run_id = len(self.runs) + 1
        self.runs[run_id] = Run(id=run_id, status="queued", **fields)
        return run_id

    def run_started(self, run_id: int) -> None:
        self.runs[run_id].status = "running"

    def measured(self, run_id: int, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.runs[run_id], key, value)

    def steps(self, run_id: int) -> MemorySteps:
        return MemorySteps(self.steps_of.setdefault(run_id, []))

    def evaluated(
        self,
        run_id: int,
        scores: dict[str, dict[str, float]],
        predictions: list[tuple[str, str, list[str], float | None]],
        order: Sequence[str],
    ) -> None:
        by_metric: dict[str, dict[str, float]] = {}
        for example_id in order:
            for metric, value in scores[example_id].items():
                by_metric.setdefault(metric, {})[example_id] = value
        self.scores[run_id] = by_metric
        self.outputs[run_id] = {example_id: text for example_id, text, _, _ in predictions}

    def streamed(self, run_id: int, points: Sequence, events: Sequence) -> None:
        stored = self.stream_of.setdefault(run_id, ([], []))
        stored[0].extend(points)
        stored[1].extend(events)

    def finished(self, run_id: int, status: str, error: str | None = None) -> None:
        self.runs[run_id].status, self.runs[run_id].error = status, error

    def note(self, kind: str, message: str, run_id: int | None = None) -> None:
        self.notes.append((kind, message, run_id))

    def run(self, run_id: int) -> Run | None:
        return self.runs.get(run_id)

    def finished_run_of_job(self, job_id: int, role: str, seed: int) -> Run | None:
        return None  # no earlier attempts in memory

    def finished_run_with_adapter_key(self, adapter_key: str) -> Run | None:
        found = [
            r
            for r in self.runs.values()
            if r.adapter_key == adapter_key and r.status == "succeeded" and r.adapter_path
        ]
        return found[-1] if found else None

    def example_scores(self, run_id: int) -> dict[str, dict[str, float]]:
        return self.scores.get(run_id, {})

    def predictions(self, run_id: int) -> dict[str, str]:
        return self.outputs.get(run_id, {})
