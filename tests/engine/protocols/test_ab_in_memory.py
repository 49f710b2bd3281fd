"""The A/B protocol against an in-memory recorder: no database is opened or created."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plan import RunOptions
from engine.runner import ExperimentRunner
from engine.settings import load_settings
from engine.spec import find_spec
from tests.engine.memory_recorder import MemoryRecorder


def test_the_ab_protocol_records_everything_through_the_recorder(project: Path) -> None:
    settings = load_settings()
    recorder = MemoryRecorder()
    runner = ExperimentRunner(settings, None, RunOptions(quick=True), recorder=recorder)
    outcome = runner.run_experiment(find_spec("v1_dynrank", settings.experiment_paths))

    assert not settings.store_path.exists()  # nothing went to a store
    runs = {run.role: run for run in recorder.runs.values()}
    assert set(runs) == {"baseline", "variant"}
    assert {run.status for run in runs.values()} == {"succeeded"}
    steps = outcome.plan.steps
    arms = ((outcome.baseline_run_id, runs["baseline"]), (outcome.variant_run_id, runs["variant"]))
    for run_id, run in arms:
        assert recorder.runs[run_id] is run
        assert [s[0] for s in recorder.steps_of[run_id]] == list(range(1, steps + 1))
        assert run.params_trainable and run.latency_p50_ms and run.tensor_peak_train_bytes
        # the scores the statistics paired are the ones recorded, in evaluation order
        recorded = recorder.example_scores(run_id)["exact_match"]
        assert len(recorded) == outcome.plan.eval_size
    [em] = [m for m in outcome.metrics if m.metric == "exact_match"]
    base = list(recorder.example_scores(outcome.baseline_run_id)["exact_match"].values())
    var = list(recorder.example_scores(outcome.variant_run_id)["exact_match"].values())
    assert em.interval.estimate == pytest.approx(sum(var) / len(var) - sum(base) / len(base))
