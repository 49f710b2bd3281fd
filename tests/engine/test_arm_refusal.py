"""A comparison whose arms differ in anything but the variant gets no verdict: refused by the
runner before statistics and again by the batch decision, from the stored outcome."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from engine.decision import arm_refusal
from engine.outcome_codec import decode_outcome
from engine.queue.execute import finish_batch
from engine.runner import ExperimentRunner
from store import jobs, queries
from store.db import Store
from store.models import Comparison, Job


def _stored_job(ran_v1_project: Path, tmp_path: Path) -> tuple[Path, Job]:
    shutil.copytree(ran_v1_project / ".bemctl", tmp_path / ".bemctl")  # the fixture is shared
    db = tmp_path / ".bemctl" / "bemctl.db"
    with Store(db, readonly=True) as store, store.read_session() as session:
        [job] = session.exec(select(Job)).all()
    return db, job


def _steps_of_variant(outcome: dict, steps: int) -> dict:
    [variant] = [a for a in outcome["arms"] if a["role"] == "variant"]
    variant["record"]["plan"]["steps"] = steps
    return outcome


def test_the_stored_outcome_names_what_differs(ran_v1_project: Path, tmp_path: Path) -> None:
    _, job = _stored_job(ran_v1_project, tmp_path)
    stored = json.loads(job.outcome_json)
    assert arm_refusal(decode_outcome(job.outcome_json)) is None  # as run: the arms match
    assert {a["role"] for a in stored["arms"]} == {"baseline", "variant"}

    refusal = arm_refusal(decode_outcome(json.dumps(_steps_of_variant(stored, 8))))
    assert refusal is not None and refusal.startswith(
        "v1_dynrank: refused, the arms differ in more than the variant: "
    )
    assert "differ in steps (6 vs 8)" in refusal
    assert "\n" not in refusal

    scored = json.loads(job.outcome_json)
    scored["arms"][1]["scored"] = "0" * 32  # another set of example ids (or positions)
    refusal = arm_refusal(decode_outcome(json.dumps(scored)))
    assert refusal is not None and "scored on different examples or positions" in refusal

    other_eval = json.loads(job.outcome_json)
    other_eval["arms"][0]["record"]["eval_fingerprint"] = "f" * 32
    refusal = arm_refusal(decode_outcome(json.dumps(other_eval)))
    assert refusal is not None and "eval set" in refusal

    plan = json.loads(job.outcome_json)
    plan["plan"]["bootstrap_samples"] = 12345
    refusal = arm_refusal(decode_outcome(json.dumps(plan)))
    assert refusal == (
        "v1_dynrank: refused: the outcome's plan and its arms' plan differ in "
        "bootstrap_samples (12345 vs 500)"
    )

    old = json.loads(job.outcome_json)
    del old["arms"]  # an outcome written before arm records existed
    refusal = arm_refusal(decode_outcome(json.dumps(old)))
    assert refusal is not None and "cannot be checked; retry it" in refusal


def test_the_batch_decision_fails_the_job_and_writes_no_verdict(
    ran_v1_project: Path, tmp_path: Path
) -> None:
    db, job = _stored_job(ran_v1_project, tmp_path)
    tampered = json.dumps(_steps_of_variant(json.loads(job.outcome_json), 8))
    with Store(db) as store:
        _, again = jobs.retry_job(store, job.id)  # a second batch, finished with that outcome
        with store.session() as session:
            session.exec(
                update(Job)
                .where(col(Job.id) == again.id)
                .values(status="succeeded", outcome_json=tampered)
            )
        assert finish_batch(store, again.batch_id)
        refused = jobs.get_job(store, again.id)
        assert refused.status == "failed" and refused.comparison_id is None
        assert "differ in steps (6 vs 8)" in refused.error
        assert jobs.job_events(store, again.id)[-1].kind == "refused"
        with store.read_session() as session:
            verdicts = session.exec(
                select(Comparison).where(Comparison.invocation_id == again.batch_id)
            ).all()
        assert verdicts == []


def test_run_refuses_arms_whose_stored_plans_differ(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's check reads the runs' records back from the store: a variant run whose
    record says another step count fails the job before any statistics, exit 1."""
    real = ExperimentRunner.train_and_evaluate

    def tamper_the_variant(self, role, run_id, *args, **kwargs):
        result = real(self, role, run_id, *args, **kwargs)
        if role == "variant":
            record = json.loads(queries.get_run(self.store, run_id).plan_json)
            record["plan"]["steps"] = 8
            queries.update_run(self.store, run_id, plan_json=json.dumps(record))
        return result

    monkeypatch.setattr(ExperimentRunner, "train_and_evaluate", tamper_the_variant)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 1
    [line] = [line for line in result.err.splitlines() if line.startswith("error: job")]
    assert "refused, the arms differ in more than the variant" in line
    assert "differ in steps (6 vs 8)" in line
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        with store.read_session() as session:
            [job] = session.exec(select(Job)).all()
            assert job.status == "failed" and "steps (6 vs 8)" in job.error
            assert job.outcome_json is None
            assert session.exec(select(Comparison)).all() == []
