"""The store's reads and writes, each write one transaction.

Callers (engine, CLI) go through these functions instead of building sessions, so the
transaction boundaries that keep the database consistent live in one place: a step's
loss and the run's progress move together, a comparison appears with all its stats
and gates or not at all.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from store.db import Store
from store.models import (
    Comparison,
    ExampleScore,
    Experiment,
    GateDecision,
    Prediction,
    Run,
    StatResult,
    StepMetric,
)
from store.states import ACTIVE_RUN_STATUSES, Role, RunStatus
from store.types import utcnow

_ROLES = tuple(r.value for r in Role)
_RUN_STATUSES = tuple(s.value for s in RunStatus)

ComparisonBundle = tuple[Experiment, Comparison, list[StatResult], list[GateDecision], Run, Run]


# -- experiments and runs -------------------------------------------------------------


def get_or_create_experiment(
    store: Store, name: str, spec_json: str, spec_hash: str, spec_path: str
) -> Experiment:
    """The experiment row for this exact spec; an edited spec gets a new row."""
    with store.session() as session:
        existing = session.exec(
            select(Experiment).where(Experiment.name == name, Experiment.spec_hash == spec_hash)
        ).first()
        if existing is not None:
            return existing
        experiment = Experiment(
            name=name, spec_json=spec_json, spec_hash=spec_hash, spec_path=spec_path
        )
        session.add(experiment)
        session.flush()
        return experiment


def create_run(
    store: Store,
    *,
    experiment_id: int,
    invocation_id: str,
    role: str,
    seed: int,
    quick: bool,
    device: str,
    total_steps: int,
    job_id: int | None = None,
    attempt: int = 1,
    adapter_key: str | None = None,
    plan_json: str | None = None,
) -> Run:
    """A queued run owned by this process (pid/hostname let a later process reap it).

    `plan_json` is the arm's record (engine.arms.ArmRecord): the plan, base, eval set and
    adapter key it is trained and evaluated under, checked before it is reused or compared."""
    if role not in _ROLES:
        raise ValueError(f"run role must be one of {_ROLES}, not {role!r}")
    run = Run(
        experiment_id=experiment_id,
        invocation_id=invocation_id,
        role=role,
        seed=seed,
        status=RunStatus.QUEUED,
        quick=quick,
        device=device,
        total_steps=total_steps,
        job_id=job_id,
        attempt=attempt,
        adapter_key=adapter_key,
        plan_json=plan_json,
        pid=os.getpid(),
        hostname=socket.gethostname(),
    )
    with store.session() as session:
        session.add(run)
        session.flush()
    return run


def mark_run_running(store: Store, run_id: int) -> None:
    """Running, started now."""
    with store.session() as session:
        run = _require_run(session, run_id)
        run.status = RunStatus.RUNNING
        run.started_at = utcnow()


def mark_run_finished(store: Store, run_id: int, status: str, error: str | None = None) -> None:
    """A terminal status (succeeded/failed/cancelled), finished now."""
    if status not in _RUN_STATUSES or status in ACTIVE_RUN_STATUSES:
        raise ValueError(f"not a terminal run status: {status!r}")
    with store.session() as session:
        run = _require_run(session, run_id)
        run.status = status
        run.error = error
        run.finished_at = utcnow()


_RUN_COLUMNS = frozenset(Run.__table__.columns.keys()) - {"id"}


def update_run(store: Store, run_id: int, **fields: Any) -> None:
    """Set measured columns (params, latency, memory...); unknown names are a bug."""
    unknown = set(fields) - _RUN_COLUMNS
    if unknown:
        raise ValueError(f"unknown run column(s): {', '.join(sorted(unknown))}")
    if "status" in fields and fields["status"] not in _RUN_STATUSES:
        raise ValueError(f"unknown run status: {fields['status']!r}")
    with store.session() as session:
        run = _require_run(session, run_id)
        for name, value in fields.items():
            setattr(run, name, value)


def record_step(
    store: Store, run_id: int, step: int, loss: float, lr: float, elapsed_s: float
) -> None:
    """One loss-curve point (see `record_steps`)."""
    record_steps(store, run_id, [(step, loss, lr, elapsed_s)])


def record_steps(
    store: Store, run_id: int, steps: Sequence[tuple[int, float, float, float]]
) -> None:
    """Append loss-curve points (step, loss, lr, elapsed_s) and move the run's progress to
    the last of them in the same transaction, so a watcher never sees progress that the
    curve does not have (or vice versa). One transaction per batch: a commit costs far
    more than a row, so the trainer buffers steps (engine.queue.steps.StepWriter).
    """
    if not steps:
        return
    rows = [(run_id, step, loss, lr, elapsed) for step, loss, lr, elapsed in steps]
    last_step, last_loss = steps[-1][0], steps[-1][1]
    with store.session() as session:
        conn = session.connection()
        # Driver-level executemany: the ORM bulk path costs ~3x more per row, and curves
        # are the one table that grows by the million (bench/store.py).
        conn.exec_driver_sql(_INSERT_STEPS, rows)
        updated = conn.exec_driver_sql(
            "UPDATE run SET current_step = ?, last_loss = ? WHERE id = ?",
            (last_step, last_loss, run_id),
        )
        if updated.rowcount != 1:
            raise LookupError(f"run {run_id} does not exist")


_INSERT_STEPS = "INSERT INTO step_metric (run_id, step, loss, lr, elapsed_s) VALUES (?, ?, ?, ?, ?)"


def record_evaluation(
    store: Store,
    run_id: int,
    scores: dict[str, dict[str, float]],
    predictions: list[tuple[str, str, list[str], float | None]],
    *,
    order: Sequence[str] | None = None,
) -> None:
    """Store per-example scores (example_id -> metric -> value) and predictions
    (example_id, prediction, references, latency_ms) in one bulk transaction.

    Each score row gets its example's position in the evaluation set (`order`: the example
    ids as evaluated; default: the order of `scores`), so the pairing of two arms - and every
    interval computed from it - can be recomputed from the store alone."""
    order = list(scores) if order is None else list(order)
    position = {example_id: i for i, example_id in enumerate(order)}
    if len(position) != len(order) or set(position) != set(scores):
        raise ValueError(
            f"run {run_id}: `order` must list each scored example once "
            f"({len(order)} ids for {len(scores)} scored examples)"
        )
    score_rows = [
        {
            "run_id": run_id,
            "example_id": example_id,
            "metric": metric,
            "value": value,
            "position": position[example_id],
        }
        for example_id, metrics in scores.items()
        for metric, value in metrics.items()
    ]
    prediction_rows = [
        {
            "run_id": run_id,
            "example_id": example_id,
            "prediction": prediction,
            "references_json": json.dumps(list(references)),
            "latency_ms": latency_ms,
        }
        for example_id, prediction, references, latency_ms in predictions
    ]
    with store.session() as session:
        _require_run(session, run_id)
        if score_rows:
            session.exec(insert(ExampleScore), params=score_rows)
        if prediction_rows:
            session.exec(insert(Prediction), params=prediction_rows)


def save_comparison(
    store: Store, comparison: Comparison, stats: list[StatResult], gates: list[GateDecision]
) -> int:
    """Write a comparison with its stats and gates atomically; returns its id."""
    with store.session() as session:
        return add_comparison(session, comparison, stats, gates)


def add_comparison(
    session: Session, comparison: Comparison, stats: list[StatResult], gates: list[GateDecision]
) -> int:
    """Add a comparison and its child rows inside the caller's transaction; returns its id.

    The child rows get the new id assigned here, whatever they carried before.
    """
    session.add(comparison)
    session.flush()
    assert comparison.id is not None
    for row in (*stats, *gates):
        row.comparison_id = comparison.id
        session.add(row)
    session.flush()
    return comparison.id


def _require_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} does not exist")
    return run


# -- reads ----------------------------------------------------------------------------


def list_experiments(store: Store) -> list[Experiment]:
    """All experiment rows, oldest first."""
    with store.read_session() as session:
        return list(session.exec(select(Experiment).order_by(col(Experiment.id))).all())


def finished_run_of_job(store: Store, job_id: int, role: str, seed: int) -> Run | None:
    """The newest succeeded run of this arm in an earlier attempt of the job, if any:
    a requeued job reuses it instead of training the arm again, once the runner has checked
    that its record (run.plan_json), adapter key, adapter file and scored examples match
    what this attempt would produce (engine.arms.reuse_problem)."""
    with store.read_session() as session:
        return session.exec(
            select(Run)
            .where(
                Run.job_id == job_id,
                Run.role == role,
                Run.seed == seed,
                Run.status == RunStatus.SUCCEEDED,
                col(Run.adapter_path).is_not(None),
            )
            .order_by(col(Run.id).desc())
        ).first()


def finished_run_with_adapter_key(store: Store, adapter_key: str) -> Run | None:
    """The newest succeeded run whose adapter was trained exactly as `adapter_key` says,
    with its adapter file still on disk (AR1 takes AR0's arm from it)."""
    with store.read_session() as session:
        runs = session.exec(
            select(Run)
            .where(
                Run.adapter_key == adapter_key,
                Run.status == RunStatus.SUCCEEDED,
                col(Run.adapter_path).is_not(None),
            )
            .order_by(col(Run.id).desc())
        ).all()
    return next((r for r in runs if Path(r.adapter_path or "").is_file()), None)


def get_experiment(store: Store, experiment_id: int) -> Experiment | None:
    with store.read_session() as session:
        return session.get(Experiment, experiment_id)


def predictions(store: Store, run_id: int) -> dict[str, str]:
    """example_id -> the model's output, for recomputing corpus statistics."""
    with store.read_session() as session:
        rows = session.exec(
            select(Prediction.example_id, Prediction.prediction).where(Prediction.run_id == run_id)
        ).all()
    return dict(rows)


def list_runs(store: Store, limit: int = 20) -> list[Run]:
    """The newest `limit` runs, newest first."""
    with store.read_session() as session:
        return list(session.exec(select(Run).order_by(col(Run.id).desc()).limit(limit)).all())


def get_run(store: Store, run_id: int) -> Run | None:
    with store.read_session() as session:
        return session.get(Run, run_id)


def step_metrics(store: Store, run_id: int) -> list[StepMetric]:
    """A run's loss curve in step order."""
    with store.read_session() as session:
        return list(
            session.exec(
                select(StepMetric).where(StepMetric.run_id == run_id).order_by(col(StepMetric.step))
            ).all()
        )


def example_scores(store: Store, run_id: int) -> dict[str, dict[str, float]]:
    """metric -> example_id -> value: the shape paired statistics consume, each metric's
    examples in evaluation-set position order (rows written before positions were stored,
    schema < 0006, come in insertion order, which was the evaluation order)."""
    with store.read_session() as session:
        rows = session.exec(
            select(ExampleScore.metric, ExampleScore.example_id, ExampleScore.value)
            .where(ExampleScore.run_id == run_id)
            .order_by(
                col(ExampleScore.position).is_(None),
                col(ExampleScore.position),
                col(ExampleScore.id),
            )
        ).all()
    result: dict[str, dict[str, float]] = {}
    for metric, example_id, value in rows:
        result.setdefault(metric, {})[example_id] = value
    return result


def latest_comparisons(
    store: Store, names: list[str] | None = None, *, invocation_id: str | None = None
) -> list[ComparisonBundle]:
    """For each experiment name, its newest comparison with stats, gates and both runs.

    An edited spec is a new experiment row under the same name, so "newest" spans
    all of a name's rows. Ordered as `names`, or by name; names never compared are
    skipped. `invocation_id` (a batch id) restricts to that batch's comparisons.
    """
    newest = select(func.max(Comparison.id)).join(
        Experiment, col(Experiment.id) == Comparison.experiment_id
    )
    if names is not None:
        newest = newest.where(col(Experiment.name).in_(names))
    if invocation_id is not None:
        newest = newest.where(Comparison.invocation_id == invocation_id)
    newest = newest.group_by(Experiment.name)
    with store.read_session() as session:
        pairs = session.exec(
            select(Experiment, Comparison)
            .join(Comparison, col(Comparison.experiment_id) == Experiment.id)
            .where(col(Comparison.id).in_(newest))
        ).all()
        bundles: dict[str, ComparisonBundle] = {}
        for experiment, comparison in pairs:
            stats = session.exec(
                select(StatResult)
                .where(StatResult.comparison_id == comparison.id)
                .order_by(col(StatResult.id))
            ).all()
            gates = session.exec(
                select(GateDecision)
                .where(GateDecision.comparison_id == comparison.id)
                .order_by(col(GateDecision.id))
            ).all()
            baseline = session.get(Run, comparison.baseline_run_id)
            variant = session.get(Run, comparison.variant_run_id)
            assert baseline is not None and variant is not None  # foreign keys
            bundles[experiment.name] = (
                experiment,
                comparison,
                list(stats),
                list(gates),
                baseline,
                variant,
            )
    order = list(dict.fromkeys(names)) if names is not None else sorted(bundles)
    return [bundles[name] for name in order if name in bundles]
