"""Behaviour of the store's read/write functions, including their transaction scope."""

import json
import os
import socket
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import delete, func, select

from store import queries
from store.db import Store
from store.models import (
    Comparison,
    ExampleScore,
    GateDecision,
    Prediction,
    Run,
    StatResult,
    StepMetric,
)

from .conftest import Seed


def _count(store: Store, model: type) -> int:
    with store.read_session() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def _counts(store: Store, *models: type) -> list[int]:
    return [_count(store, model) for model in models]


def _comparison(experiment_id: int, baseline: Run, variant: Run, verdict: str) -> Comparison:
    assert baseline.id is not None and variant.id is not None
    return Comparison(
        experiment_id=experiment_id,
        invocation_id="inv-1",
        baseline_run_id=baseline.id,
        variant_run_id=variant.id,
        verdict=verdict,
        reasons_json=json.dumps([f"because {verdict}"]),
        family_size=1,
        param_ratio=1.02,
        bootstrap_samples=2000,
        seed=0,
    )


def _stat(metric: str = "exact_match") -> StatResult:
    return StatResult(
        comparison_id=0,  # replaced by save_comparison
        metric=metric,
        n=50,
        baseline_mean=0.5,
        variant_mean=0.6,
        mean_diff=0.1,
        ci_low=0.02,
        ci_high=0.18,
        confidence_level=0.95,
        ci_method="bca",
        bootstrap_samples=2000,
        test_name="wilcoxon",
        p_value=0.01,
        family_size=1,
        effect_formula="d_z = mean(diff) / sd(diff)",
    )


def _gate(gate: str | None = "quality") -> GateDecision:
    return GateDecision(
        comparison_id=0,
        gate=gate,  # type: ignore[arg-type]  (None is used to provoke NOT NULL)
        metric="exact_match",
        passed=True,
        observed=0.02,
        threshold=0.0,
        comparator=">",
        detail="ci_low > 0",
    )


# -- experiments and runs -------------------------------------------------------------


def test_get_or_create_experiment_is_idempotent_per_spec_hash(store: Store) -> None:
    first = queries.get_or_create_experiment(store, "rank8", "{}", "h1", "a.yaml")
    again = queries.get_or_create_experiment(store, "rank8", "{}", "h1", "a.yaml")
    edited = queries.get_or_create_experiment(store, "rank8", '{"x": 1}', "h2", "a.yaml")
    assert first.id == again.id
    assert edited.id != first.id
    assert [e.spec_hash for e in queries.list_experiments(store)] == ["h1", "h2"]


def test_create_run_is_queued_and_owned_by_this_process(store: Store, seed: Seed) -> None:
    _, baseline, variant = seed()
    assert baseline.id is not None
    loaded = queries.get_run(store, baseline.id)
    assert loaded is not None
    assert (loaded.status, loaded.role, loaded.total_steps) == ("queued", "baseline", 10)
    assert loaded.pid == os.getpid()
    assert loaded.hostname == socket.gethostname()
    assert loaded.created_at.tzinfo is UTC
    assert queries.get_run(store, 999) is None
    with pytest.raises(ValueError, match="role"):
        queries.create_run(
            store,
            experiment_id=baseline.experiment_id,
            invocation_id="inv",
            role="control",
            seed=0,
            quick=False,
            device="cpu",
            total_steps=1,
        )


def test_run_lifecycle(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.mark_run_running(store, run.id)
    running = queries.get_run(store, run.id)
    assert running is not None and running.status == "running"
    assert running.started_at is not None and running.finished_at is None

    queries.mark_run_finished(store, run.id, "failed", error="CUDA out of memory")
    done = queries.get_run(store, run.id)
    assert done is not None
    assert (done.status, done.error) == ("failed", "CUDA out of memory")
    assert done.finished_at is not None and done.finished_at >= running.started_at

    with pytest.raises(ValueError, match="terminal"):
        queries.mark_run_finished(store, run.id, "running")
    with pytest.raises(LookupError):
        queries.mark_run_running(store, 999)


def test_update_run_sets_known_columns_only(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.update_run(store, run.id, params_total=1000, latency_p50_ms=3.5, memory_kind="cuda")
    loaded = queries.get_run(store, run.id)
    assert loaded is not None
    assert (loaded.params_total, loaded.latency_p50_ms, loaded.memory_kind) == (1000, 3.5, "cuda")
    with pytest.raises(ValueError, match="params_totl"):
        queries.update_run(store, run.id, params_totl=1)
    with pytest.raises(ValueError):
        queries.update_run(store, run.id, id=5)


def test_list_runs_newest_first(store: Store, seed: Seed) -> None:
    seed("a")
    seed("b")
    runs = queries.list_runs(store, limit=3)
    ids = [r.id for r in runs]
    assert len(ids) == 3
    assert ids == sorted(ids, reverse=True)
    assert runs[0].experiment_id != runs[-1].experiment_id


# -- steps and evaluation -------------------------------------------------------------


def test_record_step_updates_run_progress(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.record_step(store, run.id, step=1, loss=2.5, lr=1e-3, elapsed_s=0.1)
    queries.record_step(store, run.id, step=2, loss=2.0, lr=9e-4, elapsed_s=0.2)
    loaded = queries.get_run(store, run.id)
    assert loaded is not None
    assert (loaded.current_step, loaded.last_loss) == (2, 2.0)
    curve = queries.step_metrics(store, run.id)
    assert [(m.step, m.loss, m.lr) for m in curve] == [(1, 2.5, 1e-3), (2, 2.0, 9e-4)]


def test_record_step_is_atomic(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.record_step(store, run.id, step=1, loss=2.5, lr=1e-3, elapsed_s=0.1)
    # A duplicate step violates the unique constraint; the run's progress must not move.
    with pytest.raises(IntegrityError):
        queries.record_step(store, run.id, step=1, loss=9.9, lr=1e-3, elapsed_s=0.3)
    loaded = queries.get_run(store, run.id)
    assert loaded is not None
    assert loaded.last_loss == 2.5
    assert _count(store, StepMetric) == 1


def test_record_evaluation_round_trips(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    scores = {
        "q1": {"exact_match": 1.0, "f1": 1.0},
        "q2": {"exact_match": 0.0, "f1": 0.4},
    }
    predictions = [
        ("q1", "Paris", ["Paris", "paris, France"], 12.5),
        ("q2", "blue", ["green"], None),
    ]
    queries.record_evaluation(store, run.id, scores, predictions)
    assert queries.example_scores(store, run.id) == {
        "exact_match": {"q1": 1.0, "q2": 0.0},
        "f1": {"q1": 1.0, "q2": 0.4},
    }
    with store.read_session() as session:
        rows = session.exec(select(Prediction).order_by(Prediction.example_id)).all()
    assert [(p.example_id, p.prediction, p.latency_ms) for p in rows] == [
        ("q1", "Paris", 12.5),
        ("q2", "blue", None),
    ]
    assert json.loads(rows[0].references_json) == ["Paris", "paris, France"]
    assert queries.example_scores(store, 999) == {}


def test_record_evaluation_stores_each_examples_position(store: Store, seed: Seed) -> None:
    """Positions come from `order` (the eval set as evaluated), not from the dict or the ids;
    `example_scores` returns each metric's examples in that order."""
    _, run, _ = seed()
    assert run.id is not None
    scores = {
        eid: {"f1": v, "exact_match": float(v == 1)}
        for eid, v in [("b", 0.5), ("c", 1.0), ("a", 0.0)]
    }
    order = ["c", "a", "b"]
    queries.record_evaluation(store, run.id, scores, [], order=order)
    with store.read_session() as session:
        rows = session.exec(
            select(ExampleScore.metric, ExampleScore.example_id, ExampleScore.position)
        ).all()
    assert {(m, e): pos for m, e, pos in rows} == {
        (m, e): order.index(e) for m in ("f1", "exact_match") for e in order
    }
    got = queries.example_scores(store, run.id)
    assert list(got["f1"]) == order and list(got["exact_match"]) == order
    assert got["f1"] == {"c": 1.0, "a": 0.0, "b": 0.5}


def test_record_evaluation_without_order_uses_the_scores_order(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.record_evaluation(store, run.id, {"z": {"f1": 1.0}, "y": {"f1": 0.0}}, [])
    with store.read_session() as session:
        rows = session.exec(select(ExampleScore.example_id, ExampleScore.position)).all()
    assert dict(rows) == {"z": 0, "y": 1}


@pytest.mark.parametrize("order", [["q1"], ["q1", "q2", "q2"], ["q1", "q3"]])
def test_record_evaluation_refuses_an_order_that_is_not_the_scored_set(
    store: Store, seed: Seed, order: list[str]
) -> None:
    _, run, _ = seed()
    assert run.id is not None
    with pytest.raises(ValueError, match="`order` must list each scored example once"):
        queries.record_evaluation(
            store, run.id, {"q1": {"f1": 1.0}, "q2": {"f1": 0.0}}, [], order=order
        )
    assert _count(store, ExampleScore) == 0


def test_record_evaluation_is_one_transaction(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    duplicate_prediction = [("q1", "a", ["a"], None), ("q1", "b", ["b"], None)]
    with pytest.raises(IntegrityError):
        queries.record_evaluation(store, run.id, {"q1": {"f1": 1.0}}, duplicate_prediction)
    assert _count(store, ExampleScore) == 0


def test_deleting_a_run_cascades_to_its_rows(store: Store, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.record_step(store, run.id, step=1, loss=1.0, lr=1e-3, elapsed_s=0.1)
    queries.record_evaluation(store, run.id, {"q1": {"f1": 1.0}}, [("q1", "a", ["a"], None)])
    with store.session() as session:
        session.exec(delete(Run).where(Run.id == run.id))
    assert _counts(store, StepMetric, ExampleScore, Prediction) == [0, 0, 0]


# -- comparisons ----------------------------------------------------------------------


def test_save_comparison_links_stats_and_gates(store: Store, seed: Seed) -> None:
    experiment, baseline, variant = seed()
    assert experiment.id is not None
    comparison_id = queries.save_comparison(
        store,
        _comparison(experiment.id, baseline, variant, "PROMOTE"),
        [_stat("exact_match"), _stat("f1")],
        [_gate("quality"), _gate("params")],
    )
    [(exp, comparison, stats, gates, base, var)] = queries.latest_comparisons(store)
    assert comparison.id == comparison_id
    assert (exp.id, base.id, var.id) == (experiment.id, baseline.id, variant.id)
    assert [s.metric for s in stats] == ["exact_match", "f1"]
    assert [g.gate for g in gates] == ["quality", "params"]
    assert all(s.comparison_id == comparison_id for s in stats)
    assert all(g.comparison_id == comparison_id for g in gates)
    assert json.loads(comparison.reasons_json) == ["because PROMOTE"]


def test_save_comparison_is_atomic(store: Store, seed: Seed) -> None:
    experiment, baseline, variant = seed()
    assert experiment.id is not None
    with pytest.raises(IntegrityError):
        queries.save_comparison(
            store,
            _comparison(experiment.id, baseline, variant, "PROMOTE"),
            [_stat()],
            [_gate("quality"), _gate(None)],  # second gate violates NOT NULL
        )
    assert _counts(store, Comparison, StatResult, GateDecision) == [0, 0, 0]
    assert queries.latest_comparisons(store) == []


def test_latest_comparisons_newest_per_experiment_name(store: Store, seed: Seed) -> None:
    a, a_base, a_var = seed("alpha")
    b, b_base, b_var = seed("beta")
    # An edited spec is a new experiment row under the same name.
    a2 = queries.get_or_create_experiment(store, "alpha", '{"rank": 16}', "hash-alpha-2", "a")
    assert a.id is not None and b.id is not None and a2.id is not None
    queries.save_comparison(store, _comparison(a.id, a_base, a_var, "REJECT"), [_stat()], [])
    queries.save_comparison(store, _comparison(b.id, b_base, b_var, "REJECT"), [], [_gate()])
    newest_alpha = queries.save_comparison(
        store, _comparison(a2.id, a_base, a_var, "PROMOTE"), [_stat("f1")], []
    )

    bundles = queries.latest_comparisons(store)
    assert [(e.name, c.verdict) for e, c, *_ in bundles] == [
        ("alpha", "PROMOTE"),
        ("beta", "REJECT"),
    ]
    experiment, comparison, stats, gates, _, _ = bundles[0]
    assert (comparison.id, experiment.id) == (newest_alpha, a2.id)
    assert [s.metric for s in stats] == ["f1"] and gates == []

    only = queries.latest_comparisons(store, ["beta", "missing", "alpha"])
    assert [e.name for e, *_ in only] == ["beta", "alpha"]
    assert queries.latest_comparisons(store, []) == []


# -- reaping --------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_readonly_store_serves_queries(store: Store, store_path: Path, seed: Seed) -> None:
    _, run, _ = seed()
    assert run.id is not None
    queries.record_step(store, run.id, 1, 1.0, 1e-3, 0.1)
    with Store(store_path, readonly=True) as readonly:
        assert [r.id for r in queries.list_runs(readonly)][-1] == run.id
        assert len(queries.step_metrics(readonly, run.id)) == 1
