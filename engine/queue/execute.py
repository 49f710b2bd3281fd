"""What a worker does with one claimed job, and how a finished batch gets its verdicts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session

from engine.decision import arm_refusal, decide, write_decisions
from engine.outcome_codec import decode_outcome, encode_outcome
from engine.plan import FrozenPlan, RunOptions, freeze_plan
from engine.progress import ProgressSink
from engine.queue.control import JobControl, JobProgress
from engine.runner import ExperimentOutcome, ExperimentRunner, JobContext, resolve_specs
from engine.settings import Settings
from engine.spec import LoadedSpec, load_spec
from store import jobs, queries
from store.db import Store
from store.errors import BemctlError
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
    as an experiment row, resolve its plan with this machine's settings and these options
    (frozen into the job: every worker runs exactly this), and queue one job per experiment
    in a new batch."""
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
                freeze_plan(spec, settings, options).to_json(),
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
    frozen = job_plan(settings, store, job, loaded, options, progress)
    runner = ExperimentRunner(
        settings,
        store,
        options,
        JobProgress(progress, control),
        invocation_id=job.batch_id,
        job=JobContext(job.id, job.attempts, control),
    )
    return runner.run_experiment(loaded, frozen)


def job_plan(
    settings: Settings,
    store: Store,
    job: Job,
    loaded: LoadedSpec,
    options: RunOptions,
    progress: ProgressSink,
) -> FrozenPlan:
    """The plan frozen when the job was queued; this worker's bemctl.toml only fills in for
    a job queued by a bemctl that froze none. Either way the job's log says which it is,
    and where this worker's own settings would have run something else."""
    assert job.id is not None

    def note(message: str) -> None:
        progress.log(message)
        jobs.log_event(store, job.id, "plan", message)

    local = freeze_plan(loaded.spec, settings, options)
    if job.plan_json is None:
        note(
            f"job {job.id} has no frozen plan (queued by an older bemctl): "
            "its sizes come from this worker's bemctl.toml"
        )
        return local
    try:
        frozen = FrozenPlan.from_json(job.plan_json)
    except (ValueError, TypeError, KeyError) as exc:
        raise BemctlError(
            f"job {job.id}: plan_json: {exc}; queue it again (bemctl queue {job.experiment_name})",
            exit_code=1,
        ) from None
    p = frozen.experiment
    differ = [f"{what} {theirs}" for what, _, theirs in frozen.differences(local)]
    note(
        f"job {job.id} runs its queued plan: {p.steps} steps, batch {p.batch_size}, "
        f"{p.train_size} train / {p.eval_size} eval examples, seeds {list(p.seeds)}"
        + (f" (this worker's bemctl.toml would give {', '.join(differ)})" if differ else "")
    )
    return frozen


def finish_batch(store: Store, batch_id: str) -> bool:
    """Write the batch's verdicts if all its jobs are done; True if this call wrote them."""

    def write(session: Session, succeeded: list[Job]) -> None:
        decided = []
        for job in succeeded:
            if not job.outcome_json:
                continue
            outcome = decode_outcome(job.outcome_json)
            refusal = arm_refusal(outcome)
            if refusal is not None:  # no verdict, out of the BH family; the job fails
                jobs.refuse_job(session, job, refusal)
                continue
            decided.append((job, outcome))
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
