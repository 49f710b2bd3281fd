"""Which plan a job runs: the one frozen when queued; a job without one (an older bemctl) falls
back to the worker's bemctl.toml and says so; an unreadable one fails the job."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from engine.plan import FrozenPlan, RunOptions
from engine.progress import NullProgress
from engine.queue.execute import job_plan, load_job_spec
from engine.settings import load_settings
from store import jobs
from store.db import Store
from store.errors import BemctlError
from store.models import Job


def _queued(project: Path, cli, *args: str) -> tuple[Store, Job]:
    assert cli("queue", "v1_dynrank", *args).code == 0
    store = Store(project / ".bemctl" / "bemctl.db")
    with store.read_session() as session:
        [job] = session.exec(select(Job)).all()
    return store, job


def _set_plan(store: Store, job: Job, plan_json: str | None) -> Job:
    with store.session() as session:
        session.exec(update(Job).where(col(Job.id) == job.id).values(plan_json=plan_json))
    refreshed = jobs.get_job(store, job.id)
    assert refreshed is not None
    return refreshed


def test_queue_freezes_the_resolved_plan(project: Path, cli) -> None:
    store, job = _queued(project, cli, "--quick", "--seed", "4", "--fdr-alpha", "0.1")
    with store:
        frozen = FrozenPlan.from_json(job.plan_json)
    p = frozen.experiment
    assert (p.train_size, p.eval_size, p.steps, p.batch_size, p.latency_rounds) == (48, 24, 6, 8, 4)
    assert (p.seed, p.seeds, p.fdr_alpha, p.bootstrap_samples) == (4, (4,), 0.1, 500)
    assert frozen.pretrain == {
        "steps": 8,
        "batch_size": 8,
        "learning_rate": 0.002,
        "corpus_docs": 200,
    }


def test_the_frozen_plan_wins_over_the_workers_toml(project: Path, cli, monkeypatch) -> None:
    store, job = _queued(project, cli, "--quick")
    monkeypatch.setenv("BEMCTL_QUICK__TRAIN_STEPS", "100")  # this "worker" would train longer
    settings = load_settings()
    with store:
        loaded = load_job_spec(store, job)
        frozen = job_plan(settings, store, job, loaded, RunOptions(quick=True), NullProgress())
        assert frozen == FrozenPlan.from_json(job.plan_json) and frozen.experiment.steps == 6
        [note] = [e.message for e in jobs.job_events(store, job.id) if e.kind == "plan"]
    assert note.startswith(f"job {job.id} runs its queued plan: 6 steps")
    assert note.endswith("(this worker's bemctl.toml would give steps 100)")


def test_a_job_without_a_frozen_plan_uses_the_workers_toml_and_says_so(
    project: Path, cli, monkeypatch
) -> None:
    store, job = _queued(project, cli, "--quick")
    monkeypatch.setenv("BEMCTL_QUICK__TRAIN_STEPS", "7")
    settings = load_settings()
    with store:
        job = _set_plan(store, job, None)
        loaded = load_job_spec(store, job)
        frozen = job_plan(settings, store, job, loaded, RunOptions(quick=True), NullProgress())
        assert frozen.experiment.steps == 7
        [note] = [e.message for e in jobs.job_events(store, job.id) if e.kind == "plan"]
    assert "has no frozen plan (queued by an older bemctl)" in note


def test_an_unreadable_frozen_plan_fails_the_job_with_one_line(project: Path, cli) -> None:
    store, job = _queued(project, cli, "--quick")
    with store:
        job = _set_plan(store, job, '{"format": 7}')
        loaded = load_job_spec(store, job)
        with pytest.raises(BemctlError) as caught:
            job_plan(load_settings(), store, job, loaded, RunOptions(quick=True), NullProgress())
    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        f"job {job.id}: plan_json: plan format 7, expected 1; "
        "queue it again (bemctl queue v1_dynrank)"
    )
