"""What a worker does with one claimed job, and how a finished batch gets its verdicts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session

from bemctl.errors import BemctlError
from bemctl.settings import Settings
from engine.decision import decide, write_decisions
from engine.outcome_codec import decode_outcome, encode_outcome
from engine.plan import RunOptions
from engine.progress import ProgressSink
from engine.queue.control import JobControl, JobProgress
from engine.runner import ExperimentOutcome, ExperimentRunner, JobContext, resolve_specs
from engine.spec import LoadedSpec, load_spec
from store import jobs, queries
from store.db import Store
from store.models import Job


def enqueue_experiments(
    store: Store,
    settings: Settings,
    names: Sequence[str],
    options: RunOptions,
    *,
    priority: int = 0,
) -> tuple[str, list[Job]]:
    """Validate the specs now (a typo fails here, not on a worker later), freeze each one
    as an experiment row, and queue one job per experiment in a new batch."""
    specs = resolve_specs(names, settings)
    entries = []
    for loaded in specs:
        spec = loaded.spec
        experiment = queries.get_or_create_experiment(
            store,
            spec.experiment_name,
            spec.canonical_json(),
            spec.spec_hash(),
            str(loaded.path),
        )
        assert experiment.id is not None
        entries.append(
            jobs.QueueEntry(
                experiment.id,
                spec.experiment_name,
                str(loaded.path.resolve()),
                json.dumps(dataclasses.asdict(options)),
            )
        )
    return jobs.enqueue(
        store, entries, priority=priority, max_attempts=settings.worker.max_attempts
    )


def load_job_spec(store: Store, job: Job) -> LoadedSpec:
    """The spec as it was queued: refuse to run a file edited since (the results would
    be filed under the queued spec's hash while coming from another)."""
    loaded = load_spec(Path(job.spec_path))
    experiment = queries.get_experiment(store, job.experiment_id)
    assert experiment is not None  # foreign key
    if loaded.spec.spec_hash() != experiment.spec_hash:
        raise BemctlError(
            f"{job.spec_path}: changed since job {job.id} was queued; "
            f"queue it again (bemctl queue {job.experiment_name})"
        )
    return loaded


def run_job(
    settings: Settings,
    store: Store,
    job: Job,
    control: JobControl,
    progress: ProgressSink,
) -> ExperimentOutcome:
    assert job.id is not None
    loaded = load_job_spec(store, job)
    options = RunOptions(**json.loads(job.options_json))
    runner = ExperimentRunner(
        settings,
        store,
        options,
        JobProgress(progress, control),
        invocation_id=job.batch_id,
        job=JobContext(job.id, job.attempts, control),
    )
    return runner.run_experiment(loaded)


def finish_batch(store: Store, batch_id: str) -> bool:
    """Write the batch's verdicts if all its jobs are done; True if this call wrote them."""

    def write(session: Session, succeeded: list[Job]) -> None:
        decided = [(j, decode_outcome(j.outcome_json)) for j in succeeded if j.outcome_json]
        outcomes = [outcome for _, outcome in decided]
        decide(outcomes)
        write_decisions(session, outcomes, batch_id)
        for job, outcome in decided:
            job.comparison_id = outcome.comparison_id

    return jobs.close_batch(store, batch_id, write)


def run_job_to_json(
    settings: Settings, store: Store, job: Job, control: JobControl, progress: ProgressSink
) -> str:
    """The worker's default job runner: the experiment, its outcome as stored JSON."""
    return encode_outcome(run_job(settings, store, job, control, progress))
