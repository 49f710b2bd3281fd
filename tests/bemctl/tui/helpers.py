"""Waiting on a live console, and filling stores with exact rows for edge cases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from textual.pilot import Pilot

from store import jobs, queries
from store.db import Store
from store.models import Comparison, Event, GateDecision, Job, StatResult
from store.types import utcnow


async def wait_for(
    pilot: Pilot, predicate: Callable[[], object], what: str, timeout_s: float = 15.0
) -> None:
    """Let the app run until `predicate()` is true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await pilot.pause(0.05)


def store_path(project: Path) -> Path:
    return project / ".bemctl" / "bemctl.db"


def add_job(store: Store, name: str) -> tuple[int, int]:
    """An experiment row and one queued job for it: (experiment id, job id)."""
    spec = {"experiment_name": name, "bem_config": {"variant": "dynamic_rank"}}
    experiment = queries.get_or_create_experiment(
        store, name, json.dumps(spec), f"hash-{name}", f"{name}.yml"
    )
    assert experiment.id is not None
    entry = jobs.QueueEntry(experiment.id, name, f"/nowhere/{name}.yml", '{"quick": true}')
    _, [job] = jobs.enqueue(store, [entry])
    assert job.id is not None
    return experiment.id, job.id


def add_run(
    store: Store,
    experiment_id: int,
    job_id: int,
    role: str,
    *,
    status: str,
    step: int,
    total: int = 10,
    started_s_ago: float | None = None,
    error: str | None = None,
) -> int:
    run = queries.create_run(
        store,
        experiment_id=experiment_id,
        invocation_id="batch-fixed",
        role=role,
        seed=0,
        quick=True,
        device="cpu",
        total_steps=total,
        job_id=job_id,
    )
    assert run.id is not None
    if step:
        queries.record_steps(
            store, run.id, [(s, 5.0 - 0.1 * s, 1e-3, 0.5 * s) for s in range(1, step + 1)]
        )
    fields: dict[str, object] = {"status": status, "error": error}
    if started_s_ago is not None:
        fields["started_at"] = utcnow() - timedelta(seconds=started_s_ago)
    if status not in ("queued", "running"):
        fields["finished_at"] = utcnow()
    queries.update_run(store, run.id, **fields)
    return run.id


def set_job(store: Store, job_id: int, status: str, error: str | None = None, **fields) -> None:
    """Move a job to `status` directly (what a worker would have done), with an event."""
    with store.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.error = status, error
        if status == "running":
            job.attempts = max(job.attempts, 1)
        for name, value in fields.items():
            setattr(job, name, value)
        session.add(Event(job_id=job_id, kind=status, message=error or status))


def add_comparison(
    store: Store,
    name: str,
    verdict: str,
    delta: float,
    reasons: list[str],
    *,
    metrics: tuple[tuple[str, float], ...] = (("exact_match", 1.0), ("f1", 1.0)),
    min_improvement: float | None = None,
    underpowered: dict[str, str] | None = None,
    degenerate: tuple[str, ...] = (),
) -> int:
    """A decided comparison with two metrics and three gates, every number fixed.

    `metrics` are (name, scale): a metric's Δ is `delta * scale` and its interval ±0.02 ×
    scale (chrF in points: scale 100). `min_improvement` adds that gate per metric;
    `underpowered` maps metric -> reason (also stored as the comparison's note);
    `degenerate` metrics get a point interval (every paired difference equal).
    """
    underpowered = underpowered or {}
    experiment_id, job_id = add_job(store, name)
    set_job(store, job_id, "succeeded")
    base = add_run(store, experiment_id, job_id, "baseline", status="succeeded", step=10)
    var = add_run(store, experiment_id, job_id, "variant", status="succeeded", step=10)
    passed = verdict == "PROMOTE"
    comparison = Comparison(
        experiment_id=experiment_id,
        invocation_id="batch-fixed",
        baseline_run_id=base,
        variant_run_id=var,
        verdict=verdict,
        reasons_json=json.dumps(reasons),
        underpowered_json=json.dumps([f"{m}: {why}" for m, why in underpowered.items()]),
        family_size=2,
        param_ratio=1.01,
        flop_ratio=1.0,
        bootstrap_samples=500,
        seed=0,
    )
    stats = [
        StatResult(
            metric=metric,
            n=120,
            baseline_mean=(0.5 + i * 0.1) * scale,
            variant_mean=(0.5 + i * 0.1 + delta) * scale,
            mean_diff=delta * scale,
            ci_low=(delta - (0.0 if metric in degenerate else 0.02)) * scale,
            ci_high=(delta + (0.0 if metric in degenerate else 0.02)) * scale,
            degenerate=metric in degenerate,
            power=0.31 if metric in underpowered else 0.9,
            n_needed=410 if metric in underpowered else None,
            underpowered=metric in underpowered,
            underpowered_reason=underpowered.get(metric),
            confidence_level=0.95,
            ci_method="BCa",
            bootstrap_samples=500,
            test_name="paired permutation",
            p_value=0.004 if passed else 0.41,
            p_adjusted=0.008 if passed else 0.41,
            family_size=2,
            effect_dz=0.35 if passed else -0.05,
            effect_formula="d_z",
        )
        for i, (metric, scale) in enumerate(metrics)
    ]
    gates = [
        GateDecision(
            gate="budget_parity_params",
            passed=True,
            observed=1.01,
            threshold=0.05,
            comparator="within 1±",
            detail="trainable parameters, variant / baseline",
        ),
        GateDecision(
            gate="ci_lower_bound_positive",
            metric="exact_match",
            passed=passed,
            observed=delta - 0.02,
            threshold=0.0,
            comparator=">",
            detail="BCa lower bound of the mean paired difference",
        ),
        GateDecision(
            gate="statistical_significance",
            metric="exact_match",
            passed=passed,
            observed=0.008 if passed else 0.41,
            threshold=0.05,
            comparator="<",
            detail="BH-adjusted p-value",
        ),
    ]
    if min_improvement is not None:
        gates += [
            GateDecision(
                gate="min_improvement",
                metric=s.metric,
                passed=s.mean_diff >= min_improvement,
                observed=s.mean_diff,
                threshold=min_improvement,
                comparator=">=",
                detail="mean paired difference, raw metric points",
            )
            for s in stats
        ]
    return queries.save_comparison(store, comparison, stats, gates)


def fixed_results_store(path: Path) -> None:
    """Three experiments, one per verdict, with every number and id fixed."""
    with Store(path) as store:
        add_comparison(store, "exp_promote", "PROMOTE", 0.06, [], min_improvement=0.005)
        add_comparison(
            store,
            "exp_reject",
            "REJECT",
            -0.01,
            [
                "ci_lower_bound_positive[exact_match] (observed -0.03, needs > 0)",
                "statistical_significance[exact_match] (observed 0.41, needs < 0.05)",
            ],
            metrics=(("exact_match", 1.0), ("chrf", 100.0)),  # a fraction and points
            min_improvement=0.005,
        )
        add_comparison(
            store,
            "exp_unsure",
            "INCONCLUSIVE (underpowered)",
            0.0,
            ["underpowered: exact_match: n=120 < 200"],
            min_improvement=0.005,
            underpowered={"exact_match": "n=120 < 200"},
            degenerate=("f1",),
        )
