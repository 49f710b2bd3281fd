"""Looking after queued work: `worker` (claim and run jobs until stopped), `cancel` (stop
a run's or an experiment's jobs) and `retry` (queue a failed or cancelled job again)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bemctl.commands.common import SQLITE_INT_MAX, get_settings, open_store
from bemctl.exit_handling import Interrupted
from bemctl.output import err, out, say
from store.errors import BemctlError
from store.states import ACTIVE_JOB_STATUSES, JobStatus


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="exit when no work is left instead of waiting")
    ] = False,
    max_jobs: Annotated[
        int | None,
        typer.Option("--max-jobs", min=1, max=SQLITE_INT_MAX, help="exit after this many jobs"),
    ] = None,
) -> None:
    """Claim queued jobs and run them; Ctrl-C (or SIGTERM) hands the current job back."""
    # SIGTERM (the console's stop key) arrives as KeyboardInterrupt: exit_handling installs that.
    from bemctl.progress_view import RichProgress
    from engine.queue.worker import Worker
    from store import jobs

    settings = get_settings()
    with open_store(settings) as store, RichProgress(err) as progress:
        w = Worker(settings, store, progress, say=say)
        held: list[Any] = []  # the job being executed, to say what became of it
        execute = w.execute

        def tracked(job):
            held[:] = [job]
            result = execute(job)
            held.clear()
            return result

        w.execute = tracked  # type: ignore[method-assign]
        try:  # from the first line on, a stop is answered in words
            say(f"worker {w.identity.id} on {settings.store_path}")
            done = w.run(once=once, max_jobs=max_jobs)
        except KeyboardInterrupt:
            if not held:
                raise Interrupted("worker stopped; it held no job") from None
            # Worker.execute has released the job (on_interrupt="release"): nothing
            # was cancelled unless a cancel was already pending.
            job = jobs.get_job(store, held[0].id)
            fate = {
                JobStatus.QUEUED: "is back in the queue (the next worker resumes it)",
                JobStatus.CANCELLED: "was cancelled (a cancel had been requested)",
                JobStatus.RUNNING: "is still marked running; the next worker takes it over "
                f"once its lease lapses ({settings.worker.lease_s:g} s)",
            }.get(job.status if job else "", f"is {job.status if job else 'gone'}")
            raise Interrupted(
                f"worker stopped: job {held[0].id} ({held[0].experiment_name}) {fate}"
            ) from None
    say(f"worker done: {done} job(s)")


def cancel(
    target: Annotated[str, typer.Argument(help="a run id, or an experiment id (all its jobs)")],
) -> None:
    """Cancel queued work now; running work stops at its next training step."""
    from engine.queue.execute import finish_batch
    from store import jobs

    settings = get_settings()
    if target.isdigit() and int(target) > SQLITE_INT_MAX:
        raise BemctlError(f"run {target}: out of range (run ids are at most {SQLITE_INT_MAX})")
    with open_store(settings) as store:
        if target.isdigit():
            job = jobs.job_for_run(store, int(target))
            if job is None:
                raise BemctlError(f"run {target}: no such queued run in {settings.store_path}")
            found = [job]
        else:
            found = jobs.active_jobs_named(store, target)
            if not found:
                raise BemctlError(f"{target}: no queued or running jobs", exit_code=1)
        effects = jobs.cancel_jobs(
            store, [j.id for j in found if j.id is not None], "cancelled by user"
        )
        for job in found:
            finish_batch(store, job.batch_id)
    for job in found:
        out.print(f"job {job.id} ({job.experiment_name}): {effects.get(job.id or 0, 'unknown')}")


def retry(
    target_id: Annotated[
        int,
        typer.Argument(
            min=1, max=SQLITE_INT_MAX, metavar="ID", help="a run id; with --job, a job id"
        ),
    ],
    by_job: Annotated[
        bool,
        typer.Option(
            "--job", help="ID is a job id (a job cancelled while queued has no run to name)"
        ),
    ] = False,
) -> None:
    """Queue a failed or cancelled job again (same frozen spec and options), named by one
    of its runs or, with --job, by its own id."""
    from store import jobs

    settings = get_settings()
    with open_store(settings) as store:
        if by_job:
            job, what = jobs.get_job(store, target_id), f"job {target_id}"
            if job is None:
                raise BemctlError(f"{what}: no such job in {settings.store_path}")
        else:
            job, what = jobs.job_for_run(store, target_id), f"run {target_id}"
            if job is None:
                hint = (
                    f"; to retry job {target_id}, use --job"
                    if jobs.get_job(store, target_id) is not None
                    else ""
                )
                raise BemctlError(f"{what}: no such queued run in {settings.store_path}{hint}")
        if job.status in ACTIVE_JOB_STATUSES:
            raise BemctlError(
                f"{what}: "
                + ("it is" if by_job else f"its job {job.id} is")
                + f" still {job.status}; cancel it first"
            )
        assert job.id is not None
        batch_id, new = jobs.retry_job(store, job.id)
    out.print(
        f"queued job {new.id}: {new.experiment_name} (batch {batch_id}), retry of job {job.id}"
    )
