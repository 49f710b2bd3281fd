"""Looking at the store without changing it: `list` (experiments, jobs, recent runs) and
`show` (everything recorded about one run). Both open the store read-only."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bemctl.commands.common import SQLITE_INT_MAX, RunIdArg, get_settings, open_store
from bemctl.output import out
from store.errors import BemctlError
from store.states import JobStatus


def list_cmd(
    limit: Annotated[
        int, typer.Option(min=1, max=SQLITE_INT_MAX, help="recent runs and jobs to show")
    ] = 20,
) -> None:
    """Experiments available to run, and the most recent runs in the store."""
    from rich.text import Text

    from engine.spec import inspect_spec, spec_files
    from engine.variants.registry import get_entry

    settings = get_settings()
    table = Table(title="experiments", title_justify="left")
    for col in ("id", "variant", "status", "file"):
        table.add_column(col)
    for name, path in spec_files(settings.experiment_paths).items():
        loaded, problems = inspect_spec(path)
        if problems or loaded is None:
            table.add_row(Text(name), "?", "[red]invalid[/]", Text(str(path)))
            continue
        variant = loaded.spec.bem_config.variant
        ready = "runnable" if get_entry(variant).builder else "not implemented yet"
        table.add_row(Text(name), variant, ready, Text(str(path)))
    out.print(table)
    if not settings.store_path.exists():
        out.print("no runs yet")
        return
    from store import jobs, queries

    with open_store(settings, readonly=True) as store:
        runs = queries.list_runs(store, limit)
        names = {e.id: e.name for e in queries.list_experiments(store)}
        queued = jobs.list_jobs(store, limit)
    from bemctl.tui.format import phase_text
    from store.console import phase_progress
    from store.types import utcnow

    now = utcnow()
    table = Table(title="jobs", title_justify="left")
    for col in ("job", "experiment", "status", "attempt", "priority", "phase", "worker", "error"):
        table.add_column(col, no_wrap=col == "phase")  # step/loss/ETA stay on one line
    for j in queued:
        # a running job's phase with its step/total, detail (e.g. loss) and ETA
        phase = (
            phase_text(
                phase_progress(
                    j.phase, j.phase_step, j.phase_total, j.phase_detail, j.phase_started_at, now
                ),
            )
            if j.status == JobStatus.RUNNING
            else j.phase or ""
        )
        table.add_row(
            str(j.id),
            j.experiment_name,
            j.status,
            f"{j.attempts}/{j.max_attempts}",
            str(j.priority),
            Text(phase),  # not markup: a phase name may hold brackets
            j.worker_id or "",
            (j.error or "")[:60],
        )
    out.print(table)
    table = Table(title="recent runs", title_justify="left")
    for col in ("run", "experiment", "role", "seed", "status", "step", "loss", "started", "error"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            str(r.id),
            names.get(r.experiment_id, "?"),
            r.role,
            str(r.seed),
            r.status,
            f"{r.current_step}/{r.total_steps}",
            "" if r.last_loss is None else f"{r.last_loss:.3f}",
            r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "",
            (r.error or "")[:60],
        )
    out.print(table)


def show(run_id: RunIdArg) -> None:
    """Everything recorded about one run."""
    from store import queries

    settings = get_settings()
    with open_store(settings, readonly=True) as store:
        run_row = queries.get_run(store, run_id)
        if run_row is None:
            raise BemctlError(f"run {run_id}: no such run in {settings.store_path}")
        steps = queries.step_metrics(store, run_id)
        scores = queries.example_scores(store, run_id)
    values = run_row.model_dump()
    for column in type(run_row).__table__.columns:  # schema order, not dict order
        out.print(f"{column.name:>22}: {values.get(column.name)}", markup=False, highlight=False)
    if steps:
        shown = steps if len(steps) <= 10 else steps[:: max(1, len(steps) // 10)]
        out.print("loss curve: " + ", ".join(f"{s.step}:{s.loss:.3f}" for s in shown))
    for metric, values in scores.items():
        mean = sum(values.values()) / len(values)
        out.print(f"{metric}: mean {mean:.4f} over {len(values)} examples")
