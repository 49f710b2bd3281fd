"""Every stored interval and p-value can be recomputed from the store alone with scipy, pairing
baseline and variant by the stored evaluation positions (example_score.position) and nothing
else: not row ids, not the order rows come back in, not the example ids."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from sqlalchemy import func
from sqlmodel import col, select

from engine.arms import ArmRecord, eval_fingerprint
from engine.evaluation.scoring import EvalOutput
from engine.plan import plan_from_dict
from engine.runner import load_data
from engine.spec import find_spec
from store.db import Store
from store.models import Comparison, ExampleScore, Run, StatResult


def _by_position(rows: list[ExampleScore], run_id: int, metric: str):
    mine = sorted((r for r in rows if r.run_id == run_id and r.metric == metric), key=_pos)
    assert [r.position for r in mine] == list(range(len(mine)))  # every position once
    return [r.example_id for r in mine], np.array([r.value for r in mine])


def _pos(row: ExampleScore) -> int:
    assert row.position is not None
    return row.position


def _bca_mc_tolerance(d: np.ndarray, n_resamples: int, alpha: float) -> float:
    """4 SE of the difference of two independent B-resample BCa endpoints, plus one lattice
    step 1/n (as tests/engine/stats/test_interval.py derives it)."""
    s = d.std() / np.sqrt(d.size)
    q = alpha / 2
    se_quantile = np.sqrt(q * (1 - q) / n_resamples) / sps.norm.pdf(sps.norm.ppf(q))
    se_z0 = 2 * np.sqrt(1 / (4 * n_resamples)) / sps.norm.pdf(0)
    return 4 * np.sqrt(2) * s * np.hypot(se_quantile, se_z0) + 1 / d.size


def recompute(db: Path) -> set[str]:
    """Check every stat_result of the store's comparison against scipy; returns which checks
    ran ("degenerate", "bca-exact", "bca-monte-carlo", "mcnemar", "mcnemar-none", "t")."""
    ran: set[str] = set()
    with Store(db, readonly=True) as store, store.read_session() as session:
        [comparison] = session.exec(select(Comparison)).all()
        stats = session.exec(
            select(StatResult).where(StatResult.comparison_id == comparison.id)
        ).all()
        rows = session.exec(  # in no particular order: positions alone must pair them
            select(ExampleScore)
            .where(col(ExampleScore.run_id).in_(runs_of(comparison)))
            .order_by(func.random())
        ).all()
    assert stats
    for stat in stats:
        ids_b, b = _by_position(rows, comparison.baseline_run_id, stat.metric)
        ids_v, v = _by_position(rows, comparison.variant_run_id, stat.metric)
        assert ids_b == ids_v  # position i is the same example in both arms
        d = v - b
        assert stat.n == d.size
        assert stat.mean_diff == pytest.approx(d.mean(), abs=1e-12)
        assert stat.baseline_mean == pytest.approx(b.mean(), abs=1e-12)
        if stat.binary:
            n_b = int(np.sum((b == 1) & (v == 0)))
            n_c = int(np.sum((b == 0) & (v == 1)))
            assert (stat.discordant_b, stat.discordant_c) == (n_b, n_c)
            if n_b + n_c:
                p = sps.binomtest(n_c, n_b + n_c, 0.5).pvalue  # exact McNemar
                assert stat.p_value == pytest.approx(p, rel=1e-9)
                ran.add("mcnemar")
            else:
                assert stat.p_value == 1.0  # no discordant pair: no evidence either way
                ran.add("mcnemar-none")
        else:
            assert stat.test_name == "paired t-test"
            assert stat.p_value == pytest.approx(sps.ttest_rel(v, b).pvalue, rel=1e-9)
            ran.add("t")
        alpha = 1 - stat.confidence_level
        if stat.degenerate:
            assert np.all(d == d[0]) and stat.ci_low == stat.ci_high == d[0]
            ran.add("degenerate")
            continue
        ref = sps.bootstrap(
            (d,),
            np.mean,
            n_resamples=stat.bootstrap_samples,
            confidence_level=stat.confidence_level,
            method="BCa",
            vectorized=True,
            rng=np.random.default_rng(comparison.seed),
        ).confidence_interval
        if np.all(np.isin(d, (-1.0, 0.0, 1.0))):
            # bemctl draws {-1, 0, 1} resample means from a multinomial: same distribution,
            # another stream, so agreement is to Monte Carlo error
            tol = _bca_mc_tolerance(d, stat.bootstrap_samples, alpha)
            assert stat.ci_low == pytest.approx(ref.low, abs=tol)
            assert stat.ci_high == pytest.approx(ref.high, abs=tol)
            ran.add("bca-monte-carlo")
        else:  # the same generator gives scipy's resampled means exactly
            assert stat.ci_low == pytest.approx(ref.low, rel=1e-9)
            assert stat.ci_high == pytest.approx(ref.high, rel=1e-9)
            ran.add("bca-exact")
    return ran


def positions_are_the_eval_set(db: Path, experiments: Path) -> None:
    """Position i of every stored score is example i of the eval set that the run's record
    (run.plan_json) regenerates - not the order the scores were handed over or stored in."""
    with Store(db, readonly=True) as store, store.read_session() as session:
        [comparison] = session.exec(select(Comparison)).all()
        run = session.get(Run, comparison.baseline_run_id)
        rows = session.exec(
            select(ExampleScore.run_id, ExampleScore.example_id, ExampleScore.position)
            .where(col(ExampleScore.run_id).in_(runs_of(comparison)))
            .order_by(col(ExampleScore.id))
        ).all()
    record = ArmRecord.from_json(run.plan_json)
    loaded = find_spec("v1_dynrank", [experiments])
    _, _, evals = load_data(loaded, plan_from_dict(record.plan))
    assert eval_fingerprint(evals) == record.eval_fingerprint
    assert {(e, pos) for _, e, pos in rows} == {(ex.id, i) for i, ex in enumerate(evals)}


def runs_of(comparison: Comparison) -> tuple[int, int]:
    return comparison.baseline_run_id, comparison.variant_run_id


def test_the_session_run_recomputes_from_positions(ran_v1_project: Path, tmp_path: Path) -> None:
    shutil.copytree(ran_v1_project / ".bemctl", tmp_path / ".bemctl")  # the fixture is shared
    db = tmp_path / ".bemctl" / "bemctl.db"
    positions_are_the_eval_set(db, ran_v1_project / "experiments")
    ran = recompute(db)
    assert ran  # on the tiny run's scores: whatever they are, each stored number reproduces


def test_a_ci_and_p_value_recompute_with_scipy(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tiny run's arms score 0 everywhere (degenerate intervals), so here the scores are
    synthetic but everything else is the real job: recorded with their positions, paired,
    BCa and tested by the runner, stored, decided. The scores are handed over in reverse
    example order, so position order is not insertion order."""
    latent = np.random.default_rng(7).uniform(0, 1, 1000)
    calls: list[int] = []

    def synthetic(model, tokenizer, task, examples, metrics, *args, on_example=None, **kw):
        arm = len(calls)
        calls.append(arm)
        noise = np.random.default_rng(100 + arm).normal(0.05 * arm, 0.2, len(examples))
        scores = {}
        for i in reversed(range(len(examples))):
            f1 = float(np.round(np.clip(latent[i] + noise[i], 0, 1), 3))
            scores[examples[i].id] = {"f1": f1, "exact_match": float(f1 >= 0.6)}
        predictions = [(ex.id, "", list(ex.references), 1.0) for ex in examples]
        return EvalOutput(scores, predictions)

    monkeypatch.setattr("engine.runner.evaluate", synthetic)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 0, result.err
    assert calls == [0, 1]
    db = project / ".bemctl" / "bemctl.db"
    positions_are_the_eval_set(db, project / "experiments")
    with Store(db, readonly=True) as store, store.read_session() as session:
        first = session.exec(select(ExampleScore).order_by(col(ExampleScore.id))).first()
        n = session.exec(select(func.max(ExampleScore.position))).one()
    assert first.position == n  # stored in reverse: row order is not the pairing order
    ran = recompute(db)
    assert {"bca-exact", "t", "mcnemar", "bca-monte-carlo"} <= ran
