"""AR0 and AR1 end to end on the tiny project: experts, oracle, BC, PG, the router gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from store.db import Store
from store.models import Experiment, Job, Run

ROUTER_GATES = {"plan_length", "switch_rate", "evidence_monotonicity", "kv_hit_rate"}


def _runs(project: Path) -> dict[tuple[str, str], Run]:
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        with store.read_session() as session:
            assert all(j.status == "succeeded" for j in session.exec(select(Job)).all())
            names = {e.id: e.name for e in session.exec(select(Experiment)).all()}
            return {(names[r.experiment_id], r.role): r for r in session.exec(select(Run)).all()}


def test_ar0_and_ar1_in_one_batch_ar1_takes_ar0_from_the_store(project: Path, cli) -> None:
    result = cli("run", "ar0_bc", "ar1_pg", "--quick")
    assert result.code == 0, result.err
    assert "AR0 behavioural cloning: expert-head accuracy" in result.err
    assert "AR1 round 1:" in result.err
    records = {r["experiment_id"]: r for r in json.loads(cli("report", "--format", "json").out)}
    ar0, ar1 = records["ar0_bc"], records["ar1_pg"]
    assert set(ar0["statistical_validation"]["paired_tests"]) == {
        "exact_match",
        "f1",
        "format_validity",
    }
    assert abs(ar0["budget"]["param_ratio"] - 1) <= 0.05  # rank K·r baseline, ±5%
    assert ar0["variant_metrics"]["kv_hit_rate"] == 1.0  # chunk-sticky routing
    assert ar1["budget"]["param_ratio"] == 1.0  # AR1 = AR0's router, same parameters
    for record in (ar0, ar1):
        assert ROUTER_GATES <= {g["gate"] for g in record["gates"]}
        router = record["variant_metrics"]["router"]
        assert 1 <= router["plan_length"] <= 3  # the plan cap holds on every sequence
        assert router["projections"]["compositions"] > 0
        assert set(router["monotonicity"]["means"]) == {"clean", "half_shuffled", "shuffled"}
        dynamics = record["variant_metrics"]["dynamics"]
        assert dynamics["unit"] == "action" and dynamics["all"]["tokens"] > 0
        assert record["acceptance_decision"]["overall_verdict"] in {
            "PROMOTE",
            "REJECT",
            "INCONCLUSIVE (underpowered)",
        }
    assert ar0["baseline_metrics"]["router"] is None  # the static LoRA is no router
    runs = _runs(project)
    ar0_arm, borrowed = runs["ar0_bc", "variant"], runs["ar1_pg", "baseline"]
    assert borrowed.adapter_source_run_id == ar0_arm.id  # pulled in, not retrained
    assert borrowed.adapter_key == ar0_arm.adapter_key
    assert ar1["baseline_metrics"]["router"]["plan_length"] == pytest.approx(
        ar0["variant_metrics"]["router"]["plan_length"]
    )
    assert ar0_arm.current_step == ar0_arm.total_steps  # expert stage streamed
    pg = runs["ar1_pg", "variant"]
    assert pg.total_steps == pg.current_step == 10  # a quarter of the spec's 40 rounds
    report = cli("report", "ar1_pg", "--format", "md").out
    assert "| router | baseline | variant |" in report
    assert f"adapter was taken from run {ar0_arm.id}" in report
