"""AR0 end to end on the tiny project: experts, oracle, BC, then the usual comparison."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from store.db import Store
from store.models import Job, Run


def test_ar0_runs_against_a_multitask_lora_of_the_same_budget(project: Path, cli) -> None:
    result = cli("run", "ar0_bc", "--quick")
    assert result.code == 0, result.err
    assert "AR0 behavioural cloning: expert-head accuracy" in result.err
    [record] = json.loads(cli("report", "ar0_bc", "--format", "json").out)
    assert set(record["statistical_validation"]["paired_tests"]) == {
        "exact_match",
        "f1",
        "format_validity",
    }
    assert abs(record["budget"]["param_ratio"] - 1) <= 0.05  # rank K·r baseline, ±5%
    assert record["variant_metrics"]["kv_hit_rate"] == 1.0  # chunk-sticky routing
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        with store.read_session() as session:
            [job] = session.exec(select(Job)).all()
            assert job.status == "succeeded"
            runs = {r.role: r for r in session.exec(select(Run)).all()}
    assert runs["variant"].current_step == runs["variant"].total_steps  # expert stage streamed
