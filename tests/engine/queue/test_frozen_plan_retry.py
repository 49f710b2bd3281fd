"""Issue 12: a requeued job runs the plan frozen when it was queued, whatever the bemctl.toml of
the worker that takes it, and reuses a finished arm only if it matches that plan."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from engine.arms import ArmRecord
from engine.progress import NullProgress
from engine.queue.control import JobControl
from engine.queue.execute import run_job
from engine.queue.worker import Worker
from engine.runner import ExperimentRunner
from engine.settings import load_settings
from store import jobs, queries
from store.db import Store
from store.models import Comparison, Job, Run, StatResult
from store.types import utcnow
from tests.conftest import TINY_TOML


class _WorkerDied(Exception):
    """Stands in for SIGKILL: the attempt stops where it is and closes nothing."""


def _first_attempt_dies_after_the_baseline() -> int:
    """A worker on another host claims the queued job, trains, scores and stores the baseline,
    then "dies" before the variant: its lease is made to lapse. Returns the job id."""
    settings = load_settings()
    far = jobs.WorkerIdentity("far:1:x", "far", 1)
    with Store(settings.store_path) as store:
        job = jobs.claim_next(store, far, 600)
        assert job is not None and job.id is not None
        control = JobControl(store, job.id, far.id, heartbeat_s=600, lease_s=600)
        real = ExperimentRunner.train_and_evaluate

        def until_the_variant(self, role, *args, **kwargs):
            if role == "variant":
                raise _WorkerDied
            return real(self, role, *args, **kwargs)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ExperimentRunner, "train_and_evaluate", until_the_variant)
            with pytest.raises(_WorkerDied):
                run_job(settings, store, job, control, NullProgress())
        control.close()
        now = utcnow()
        with store.session() as session:
            session.exec(
                update(Job)
                .where(col(Job.id) == job.id)
                .values(
                    lease_expires_at=now - timedelta(seconds=1),
                    heartbeat_at=now - timedelta(seconds=60),
                )
            )
        return job.id


def _second_worker() -> None:
    settings = load_settings()
    with Store(settings.store_path) as store:
        assert Worker(settings, store).run(once=True) == 1


def _runs(session, job_id: int) -> dict[tuple[str, int], Run]:
    return {
        (r.role, r.attempt): r for r in session.exec(select(Run).where(Run.job_id == job_id)).all()
    }


def test_a_worker_with_other_sizes_runs_the_queued_plan_and_reuses_the_baseline(
    project: Path, cli
) -> None:
    assert cli("queue", "v1_dynrank", "--quick").code == 0  # tiny toml: 48/24 examples, 6 steps
    job_id = _first_attempt_dies_after_the_baseline()
    other = TINY_TOML
    for old, new in [
        ("train_examples = 48", "train_examples = 32"),
        ("eval_examples = 24", "eval_examples = 12"),
        ("train_steps = 6", "train_steps = 3"),
        ("\nsteps = 8", "\nsteps = 9"),  # [pretrain]: another base model
        ("seed = 0", "seed = 5"),
    ]:
        assert old in other
        other = other.replace(old, new)
    (project / "bemctl.toml").write_text(other)
    assert load_settings().quick.train_steps == 3  # this worker alone would run another plan

    _second_worker()

    db = project / ".bemctl" / "bemctl.db"
    with Store(db, readonly=True) as store, store.read_session() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts) == ("succeeded", 2), job.error
        runs = _runs(session, job_id)
        assert set(runs) == {("baseline", 1), ("variant", 1), ("variant", 2)}
        assert runs["variant", 1].status == "interrupted"
        baseline, variant = runs["baseline", 1], runs["variant", 2]  # the baseline was reused
        [comparison] = session.exec(select(Comparison)).all()
        assert (comparison.baseline_run_id, comparison.variant_run_id) == (baseline.id, variant.id)
        assert comparison.seed == 0  # the queued seed, not this worker's 5
        records = [ArmRecord.from_json(r.plan_json) for r in (baseline, variant)]
        for run, record in zip((baseline, variant), records, strict=True):
            assert run.total_steps == run.current_step == 6
            assert len(queries.step_metrics(store, run.id)) == 6
            plan = record.plan
            assert (plan["steps"], plan["train_size"], plan["eval_size"]) == (6, 48, 24)
            assert record.pretrain["steps"] == 8
            scores = queries.example_scores(store, run.id)
            assert {m: len(v) for m, v in scores.items()} == {"exact_match": 24, "f1": 24}
        assert records[0].eval_fingerprint == records[1].eval_fingerprint
        assert {s.n for s in session.exec(select(StatResult)).all()} == {24}
        events = jobs.job_events(store, job_id)
    plan_notes = [e.message for e in events if e.kind == "plan"]
    assert len(plan_notes) == 2  # one per attempt
    assert "runs its queued plan: 6 steps, batch 8, 48 train / 24 eval examples" in plan_notes[1]
    for differs in ("eval_size 12", "steps 3", "train_size 32", "pretrain.steps 9", "seed 5"):
        assert differs in plan_notes[1]
    assert any(e.kind == "reused" and f"reusing run {baseline.id}" in e.message for e in events)
    # training and the fresh-process memory probes both used the queued base model
    cached = [p for p in (project / ".bemctl" / "models").iterdir() if p.name.startswith("tiny")]
    assert len(cached) == 1, cached


def _tamper_plan(run: Run, store: Store) -> str:
    record = json.loads(run.plan_json)
    record["plan"]["steps"] = 8
    queries.update_run(store, run.id, plan_json=json.dumps(record))
    return "steps 8, plan says 6"


def _tamper_adapter(run: Run, store: Store) -> str:
    Path(run.adapter_path).write_bytes(b"not a safetensors file")
    return f"its adapter file {run.adapter_path} is unreadable (SafetensorError)"


@pytest.mark.parametrize("tamper", [_tamper_plan, _tamper_adapter], ids=["plan", "adapter"])
def test_a_finished_arm_that_does_not_match_is_trained_again(project: Path, cli, tamper) -> None:
    assert cli("queue", "v1_dynrank", "--quick").code == 0
    job_id = _first_attempt_dies_after_the_baseline()
    db = project / ".bemctl" / "bemctl.db"
    with Store(db) as store, store.read_session() as session:
        old = _runs(session, job_id)["baseline", 1]
        assert old.status == "succeeded"
        why = tamper(old, store)

    _second_worker()

    with Store(db, readonly=True) as store, store.read_session() as session:
        job = session.get(Job, job_id)
        assert job.status == "succeeded", job.error
        runs = _runs(session, job_id)
        new = runs["baseline", 2]
        assert new.status == "succeeded" and new.current_step == new.total_steps == 6
        [comparison] = session.exec(select(Comparison)).all()
        assert comparison.baseline_run_id == new.id != old.id
        events = jobs.job_events(store, job_id)
    [note] = [e for e in events if e.kind == "not_reused"]
    assert note.message == (f"run {old.id} (baseline, seed 0) not reused: {why}; training it again")
    assert note.run_id == old.id
    assert not any(e.kind == "reused" for e in events)
