"""Arms that need no training now, and arms that must not be compared.

A worker can die after finishing an arm; its retry takes that arm back instead of training
it again, but only if the stored arm is exactly what this attempt would produce
(`reusable_run`: same record, adapter key, readable adapter, scores on this eval set in
order) and then restores it (`reload_arm`). Before any statistics, `check_arms` refuses a
comparison whose stored arms differ in anything but the variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.adapter_files import adapter_problem, load_adapter
from engine.arms import (
    ArmRecord,
    RoleResult,
    ScoredArm,
    comparison_refusal,
    ids_fingerprint,
    reuse_problem,
)
from engine.models.base_model import BaseModel
from engine.spec import LoadedSpec
from engine.tasks.base import Task, TaskExample
from store.errors import BemctlError
from store.models import Run

if TYPE_CHECKING:
    from engine.runner import ExperimentRunner


def reusable_run(
    runner: ExperimentRunner,
    role: str,
    seed: int,
    expected: ArmRecord,
    loaded: LoadedSpec,
    evals: list[TaskExample],
    blocked: str | None = None,
) -> tuple[Run, dict[str, dict[str, float]]] | None:
    """This arm's finished run from an earlier attempt of the job, with its stored scores,
    if it may stand in for training the arm now: same record (plan, base, eval set,
    device), same adapter key, adapter file readable, every metric scored on exactly this
    eval set in this order, not `blocked`. Otherwise None, and the job's log says why."""
    if runner.job is None:
        return None
    done = runner.recorder.finished_run_of_job(runner.job.job_id, role, seed)
    if done is None:
        return None
    assert done.id is not None
    why = blocked or reuse_problem(done.plan_json, done.adapter_key, expected)
    scores: dict[str, dict[str, float]] = {}
    if why is None:
        why = adapter_problem(done.adapter_path)
    if why is None:
        scores = runner.recorder.example_scores(done.id)
        ids = [ex.id for ex in evals]
        for metric in loaded.spec.metric_names:
            if metric not in scores:
                why = f"it has no stored {metric} scores"
            elif list(scores[metric]) != ids:
                why = f"its stored {metric} scores are not this eval set in order"
            if why is not None:
                break
    if why is not None:
        runner.note(
            "not_reused",
            f"run {done.id} ({role}, seed {seed}) not reused: {why}; training it again",
            done.id,
        )
        return None
    return done, scores


def check_arms(
    runner: ExperimentRunner,
    name: str,
    results: dict[tuple[int, str], RoleResult],
    evals: list[TaskExample],
) -> list[ScoredArm]:
    """Refuse (the job fails, no statistics) a comparison whose arms, as stored, differ in
    anything but the variant, or were not all scored on this eval set in order."""
    ids = tuple(ex.id for ex in evals)
    arms = []
    for (seed, role), result in results.items():
        run = runner.recorder.run(result.run_id)
        assert run is not None
        try:
            record = ArmRecord.from_json(run.plan_json) if run.plan_json else None
        except (ValueError, TypeError):
            record = None
        arms.append(
            ScoredArm(
                result.run_id,
                role,
                seed,
                record,
                ids_fingerprint(result.example_ids),
                len(result.example_ids),
                tuple(result.example_ids),
            )
        )
    refusal = comparison_refusal(arms, expected_ids=ids)
    if refusal is not None:
        raise BemctlError(f"{name}: {refusal}", exit_code=1)
    return arms


def reload_arm(
    runner: ExperimentRunner,
    run: Run,
    scores: dict[str, dict[str, float]],
    loaded: LoadedSpec,
    base: BaseModel,
    task: Task,
    evals: list[TaskExample],
) -> RoleResult:
    """An arm finished by an earlier attempt of this job (checked by `reusable_run`):
    its adapter, scores (metric -> example -> value, in position order) and measurements
    come back from the store; corpus statistics are recomputed from the stored
    predictions (they are a deterministic function of them)."""
    assert run.id is not None and run.adapter_path is not None
    runner.note(
        "reused",
        f"reusing run {run.id} ({run.role}, seed {run.seed}) from attempt {run.attempt}: "
        "same plan, eval set and adapter key",
        run.id,
    )
    model = runner.build_arm(run.role, loaded, base, run.seed)
    model.load_trainable_state_dict(load_adapter(Path(run.adapter_path)))
    by_example: dict[str, dict[str, float]] = {}
    for metric, values in scores.items():
        for example_id, value in values.items():
            by_example.setdefault(example_id, {})[metric] = value
    corpus: dict = {}
    corpus_metrics = [m for m in loaded.spec.metric_names if task.metric(m).corpus_level]
    if corpus_metrics:
        outputs = runner.recorder.predictions(run.id)
        for metric in corpus_metrics:
            corpus[metric] = np.stack(
                [
                    np.asarray(task.corpus_stats(metric, outputs[ex.id], ex), dtype=float)
                    for ex in evals
                ]
            )
    return RoleResult(
        run.id,
        model,
        by_example,
        run.params_total or 0,
        run.params_trainable or 0,
        run.flops_per_token or 0.0,
        Path(run.adapter_path),
        corpus,
        json.loads(run.variant_stats_json) if run.variant_stats_json else None,
        list(scores[loaded.spec.metric_names[0]]),
    )
