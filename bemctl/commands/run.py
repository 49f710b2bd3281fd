"""Putting experiments to work: `run` (queue a batch and work it here), `queue` (for a
worker or the console) and `validate` (check specs and bemctl.toml without running)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bemctl.commands.common import (
    BootstrapOpt,
    BudgetOpt,
    ExperimentsArg,
    FdrOpt,
    PowerOpt,
    PriorityOpt,
    QuickOpt,
    SeedOpt,
    check_specs,
    config_path,
    get_settings,
    open_store,
    run_options,
)
from bemctl.exit_handling import Interrupted
from bemctl.output import err, out, say
from store.states import JobStatus


def run(
    experiments: ExperimentsArg,
    quick: QuickOpt = False,
    seed: SeedOpt = None,
    bootstrap_samples: BootstrapOpt = None,
    fdr_alpha: FdrOpt = None,
    statistical_power: PowerOpt = None,
    budget_tolerance: BudgetOpt = None,
    priority: PriorityOpt = 0,
) -> None:
    """Train baseline and variant, evaluate, test, apply the gates, print the verdicts.

    The experiments are queued as one batch and worked here, in the foreground, by the
    same code a `bemctl worker` runs (another worker may take some of them).
    """
    from bemctl.progress_view import RichProgress
    from bemctl.reports.records import build_records
    from bemctl.verdicts import print_verdicts
    from engine.queue.execute import enqueue_experiments
    from engine.queue.worker import Worker
    from store import jobs

    options = run_options(
        quick, seed, bootstrap_samples, fdr_alpha, statistical_power, budget_tolerance
    )
    settings = get_settings()
    check_specs(experiments, settings)
    with open_store(settings) as store:
        batch_id, _ = enqueue_experiments(store, settings, experiments, options, priority=priority)
        with RichProgress(err) as progress:
            worker = Worker(
                settings, store, progress, batch_id=batch_id, on_interrupt="cancel", say=say
            )
            try:
                worker.drain_batch()
            except KeyboardInterrupt:
                jobs.abandon_batch(store, batch_id, "interrupted by user (Ctrl-C)")
                raise Interrupted(
                    f"interrupted: batch {batch_id} cancelled (its unfinished runs are marked "
                    "cancelled); no verdicts written"
                ) from None
        _, batch_jobs = jobs.batch_state(store, batch_id)
        records = build_records(store, invocation_id=batch_id)
    print_verdicts(out, records)
    if records:
        names = " ".join(r["experiment_id"] for r in records)
        out.print(f"\nstored; write it up with: bemctl report {names} --format md")
    unfinished = [j for j in batch_jobs if j.status != JobStatus.SUCCEEDED]
    for j in unfinished:
        say(f"error: job {j.id} ({j.experiment_name}) {j.status}: {j.error}")
    if unfinished:
        raise typer.Exit(1)


def queue(
    experiments: ExperimentsArg,
    quick: QuickOpt = False,
    seed: SeedOpt = None,
    bootstrap_samples: BootstrapOpt = None,
    fdr_alpha: FdrOpt = None,
    statistical_power: PowerOpt = None,
    budget_tolerance: BudgetOpt = None,
    priority: PriorityOpt = 0,
) -> None:
    """Queue experiments (one batch, one BH family) for `bemctl worker` or the console."""
    from engine.queue.execute import enqueue_experiments

    options = run_options(
        quick, seed, bootstrap_samples, fdr_alpha, statistical_power, budget_tolerance
    )
    settings = get_settings()
    check_specs(experiments, settings)
    with open_store(settings) as store:
        batch_id, queued = enqueue_experiments(
            store, settings, experiments, options, priority=priority
        )
    for job in queued:
        out.print(f"queued job {job.id}: {job.experiment_name} (batch {batch_id})")
    out.print("work them with: bemctl worker   (or press w in bemctl tui)")


def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="spec files or bemctl.toml "
            "(default: every spec in the experiment directories and bemctl.toml)"
        ),
    ] = None,
) -> None:
    """Check experiment specs and bemctl.toml; print every problem, exit 2 if any."""
    from engine.settings import CONFIG_NAME, find_config, settings_errors
    from engine.spec import spec_errors, spec_files

    targets = list(paths or [])
    if not targets:
        config = config_path() or find_config()
        if config is not None:
            targets.append(config)
        settings = get_settings()
        targets.extend(spec_files(settings.experiment_paths).values())
    problems: list[str] = []
    for path in targets:
        if path.name == CONFIG_NAME or path.suffix == ".toml":
            found = settings_errors(path)
        else:
            found = spec_errors(path)
        problems.extend(found)
        if not found:
            out.print(f"ok  {path}")
    for line in problems:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
