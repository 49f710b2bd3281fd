"""Refactors of the engine must not change what an experiment measures.

`bemctl run v1_dynrank ar1_pg --quick` on the tiny test project (seed 0) is compared with a
record written before the engine was reorganised around experiment protocols
(tests/engine/golden/quick_v1_ar1.json): every run's per-example scores and predictions, its
trainable-parameter count and its training-step losses. Scores and predictions must match
exactly; losses are compared at float32 resolution (`EPSILONS` machine epsilons), because the
order of a BLAS kernel's sums differs between CPU models, and on the machine the record was
written on they match bit for bit. The same run shows that `ar1_pg` queued without `ar0_bc`
trains the AR0 it needs as its baseline (one run fewer in the suite than a test of its own).

To write the record again after a change that is *meant* to change results, run this test with
WRITE_GOLDEN=1 and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from sqlmodel import select

from store import queries
from store.db import Store
from store.models import Experiment, Run

GOLDEN = Path(__file__).with_name("golden") / "quick_v1_ar1.json"
EPSILONS = 64
FLOAT32_EPS = 2.0**-23


def _measured(project: Path) -> dict:
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        with store.read_session() as session:
            names = {e.id: e.name for e in session.exec(select(Experiment)).all()}
            runs = session.exec(select(Run).order_by(Run.id)).all()
        record: dict = {}
        for run in runs:
            assert run.id is not None
            record[f"{names[run.experiment_id]}/{run.role}/seed{run.seed}"] = {
                "scores": queries.example_scores(store, run.id),
                "predictions": queries.predictions(store, run.id),
                "params_trainable": run.params_trainable,
                "losses": [s.loss for s in queries.step_metrics(store, run.id)],
            }
            if (names[run.experiment_id], run.role) == ("ar1_pg", "baseline"):
                assert run.adapter_source_run_id is None  # trained here, not taken
                assert run.current_step == run.total_steps > 0
    return record


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=EPSILONS * FLOAT32_EPS, abs_tol=EPSILONS * FLOAT32_EPS)


def test_quick_run_scores_match_the_record(project: Path, cli) -> None:
    result = cli("run", "v1_dynrank", "ar1_pg", "--quick")
    assert result.code == 0, result.err
    # ar1_pg without ar0_bc in the batch (or the store) trains the AR0 it needs as its baseline
    assert "AR0 behavioural cloning: expert-head accuracy" in result.err
    measured = _measured(project)
    dump = os.environ.get("GOLDEN_DUMP")  # where to write what this run measured, to diff it
    if dump:
        Path(dump).write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    if os.environ.get("WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sorted(measured) == sorted(expected)
    for arm, want in expected.items():
        got = measured[arm]
        assert got["params_trainable"] == want["params_trainable"], arm
        assert got["predictions"] == want["predictions"], arm
        assert got["scores"] == want["scores"], arm
        assert len(got["losses"]) == len(want["losses"]), arm
        bad = [
            (i, g, w)
            for i, (g, w) in enumerate(zip(got["losses"], want["losses"], strict=True))
            if not _close(g, w)
        ]
        assert not bad, f"{arm}: step losses differ (step, got, recorded): {bad[:3]}"
