"""The `bemctl` command line (Typer). Every user error ends as one line and exit code 2."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from engine.limits import BOOTSTRAP_SAMPLES
from engine.settings import MAX_SEED
from engine.stats import MIN_RESAMPLES
from store.errors import BemctlError
from store.states import ACTIVE_JOB_STATUSES, JobStatus

# Ids, priorities and limits end up as SQLite INTEGERs: signed 64-bit.
SQLITE_INT_MAX = 2**63 - 1


class Interrupted(BemctlError):
    """Ctrl-C or SIGTERM, after the command has put the store in order: the message says
    what became of its work (printed as is, exit 130)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=130)


class StdoutError(BemctlError):
    """Standard output cannot be written (a full disk, /dev/full, a closed pipe)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to standard output: {exc.strerror}", exit_code=1)
        self.errno = exc.errno


class _Stdout:
    """sys.stdout as found at each call (tests swap it), whose write errors become one
    StdoutError for `main` instead of a traceback from deep inside Rich."""

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except OSError as exc:
            raise StdoutError(exc) from None

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except OSError as exc:
            raise StdoutError(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run adapter (BEM) experiments against their baseline and decide with statistics.",
)
_stdout = _Stdout()
out = Console(file=_stdout, width=None if sys.stdout.isatty() else 140)  # type: ignore[arg-type]
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
_state: dict[str, Path | None] = {"config": None}


@app.callback()
def _global(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="bemctl.toml to use (default: nearest one at or above the current directory)",
        ),
    ] = None,
) -> None:
    _state["config"] = config


def _settings():
    from engine.settings import load_settings

    return load_settings(_state["config"])


def _open_store(settings, readonly: bool = False):
    from store.db import Store

    return Store(
        settings.store_path, readonly=readonly, busy_timeout_s=settings.store_busy_timeout_s
    )


def _run_options(
    quick: bool,
    seed: int | None,
    bootstrap_samples: int | None,
    fdr_alpha: float | None,
    statistical_power: float | None,
    budget_tolerance: float | None,
):
    from engine.plan import RunOptions

    if fdr_alpha is not None and not 0 < fdr_alpha < 1:
        raise BemctlError(f"--fdr-alpha: must be between 0 and 1, exclusive (got {fdr_alpha})")
    if statistical_power is not None and not 0 < statistical_power < 1:
        raise BemctlError(
            f"--statistical-power: must be between 0 and 1, exclusive (got {statistical_power})"
        )
    if budget_tolerance is not None and not 0 <= budget_tolerance < 1:
        raise BemctlError(f"--budget-tolerance: must be in [0, 1) (got {budget_tolerance})")
    return RunOptions(
        quick=quick,
        seed=seed,
        bootstrap_samples=bootstrap_samples,
        fdr_alpha=fdr_alpha,
        budget_tolerance=budget_tolerance,
        target_power=statistical_power,
    )


ExperimentsArg = Annotated[list[str], typer.Argument(help="experiment ids or spec files")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="small sizes from bemctl.toml [quick]")]
SeedOpt = Annotated[
    int | None,
    typer.Option(min=0, max=MAX_SEED, help=f"seed for data, init and bootstrap (0..{MAX_SEED})"),
]
BootstrapOpt = Annotated[
    int | None, typer.Option(min=MIN_RESAMPLES, max=BOOTSTRAP_SAMPLES, help="BCa resamples")
]
FdrOpt = Annotated[float | None, typer.Option(help="BH-FDR level, in (0, 1)")]
PowerOpt = Annotated[
    float | None,
    typer.Option(help="target power, in (0, 1): report the n each metric would need"),
]
BudgetOpt = Annotated[float | None, typer.Option(help="param/FLOP parity ±, in [0, 1)")]
PriorityOpt = Annotated[
    int,
    typer.Option(min=-SQLITE_INT_MAX, max=SQLITE_INT_MAX, help="higher runs first (default 0)"),
]
RunIdArg = Annotated[
    int, typer.Argument(min=1, max=SQLITE_INT_MAX, help="run id from `bemctl list`")
]


def _say(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _check_specs(experiments: list[str], settings) -> None:
    """Refuse bad specs before the store is opened (or created): bad input leaves nothing
    behind. `enqueue_experiments` applies the same rules again as it queues."""
    from engine.runner import resolve_specs

    resolve_specs(experiments, settings)


@app.command()
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

    options = _run_options(
        quick, seed, bootstrap_samples, fdr_alpha, statistical_power, budget_tolerance
    )
    settings = _settings()
    _check_specs(experiments, settings)
    with _open_store(settings) as store:
        batch_id, _ = enqueue_experiments(store, settings, experiments, options, priority=priority)
        with RichProgress(err) as progress:
            worker = Worker(
                settings, store, progress, batch_id=batch_id, on_interrupt="cancel", say=_say
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
        _say(f"error: job {j.id} ({j.experiment_name}) {j.status}: {j.error}")
    if unfinished:
        raise typer.Exit(1)


@app.command()
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

    options = _run_options(
        quick, seed, bootstrap_samples, fdr_alpha, statistical_power, budget_tolerance
    )
    settings = _settings()
    _check_specs(experiments, settings)
    with _open_store(settings) as store:
        batch_id, queued = enqueue_experiments(
            store, settings, experiments, options, priority=priority
        )
    for job in queued:
        out.print(f"queued job {job.id}: {job.experiment_name} (batch {batch_id})")
    out.print("work them with: bemctl worker   (or press w in bemctl tui)")


@app.command()
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
    # SIGTERM (the console's stop key) arrives as KeyboardInterrupt: `main` installs that.
    from bemctl.progress_view import RichProgress
    from engine.queue.worker import Worker
    from store import jobs

    settings = _settings()
    with _open_store(settings) as store, RichProgress(err) as progress:
        w = Worker(settings, store, progress, say=_say)
        held: list[Any] = []  # the job being executed, to say what became of it
        execute = w.execute

        def tracked(job):
            held[:] = [job]
            result = execute(job)
            held.clear()
            return result

        w.execute = tracked  # type: ignore[method-assign]
        try:  # from the first line on, a stop is answered in words
            _say(f"worker {w.identity.id} on {settings.store_path}")
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
    _say(f"worker done: {done} job(s)")


@app.command()
def cancel(
    target: Annotated[str, typer.Argument(help="a run id, or an experiment id (all its jobs)")],
) -> None:
    """Cancel queued work now; running work stops at its next training step."""
    from engine.queue.execute import finish_batch
    from store import jobs

    settings = _settings()
    if target.isdigit() and int(target) > SQLITE_INT_MAX:
        raise BemctlError(f"run {target}: out of range (run ids are at most {SQLITE_INT_MAX})")
    with _open_store(settings) as store:
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


@app.command()
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

    settings = _settings()
    with _open_store(settings) as store:
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


@app.command()
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
        config = _state["config"] or find_config()
        if config is not None:
            targets.append(config)
        settings = _settings()
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


@app.command("list")
def list_cmd(
    limit: Annotated[
        int, typer.Option(min=1, max=SQLITE_INT_MAX, help="recent runs and jobs to show")
    ] = 20,
) -> None:
    """Experiments available to run, and the most recent runs in the store."""
    from rich.text import Text

    from engine.spec import inspect_spec, spec_files
    from engine.variants.registry import get_entry

    settings = _settings()
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

    with _open_store(settings, readonly=True) as store:
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


@app.command()
def show(run_id: RunIdArg) -> None:
    """Everything recorded about one run."""
    from store import queries

    settings = _settings()
    with _open_store(settings, readonly=True) as store:
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


@app.command()
def report(
    experiments: Annotated[
        list[str] | None, typer.Argument(help="experiment ids (default all)")
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="md, json, html (one self-contained file with plots) or csv (row per metric)",
        ),
    ] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to FILE")] = None,
) -> None:
    """The latest comparison of each experiment, as Markdown, JSON, HTML or CSV."""
    from bemctl.reports.curves import load_curves
    from bemctl.reports.markdown import render_markdown
    from bemctl.reports.records import build_records

    if format not in ("md", "json", "html", "csv"):
        raise BemctlError(f"--format: expected md, json, html or csv (got {format!r})")
    settings = _settings()
    if not settings.store_path.exists():
        err.print("nothing to report: no store yet (run `bemctl run ...` first)")
        return
    with _open_store(settings, readonly=True) as store:
        records = build_records(store, experiments)
        curves = load_curves(store, records) if format == "html" else {}
    if not records:
        err.print(
            "nothing to report: no finished comparisons"
            + (f" for {', '.join(experiments)}" if experiments else "")
        )
        return
    if format == "html":  # imported here: matplotlib takes a second to load
        from bemctl.reports.html import render_html

        text = render_html(records, curves)
    elif format == "csv":
        from bemctl.reports.csv_report import render_csv

        text = render_csv(records)
    else:
        text = render_markdown(records) if format == "md" else json.dumps(records, indent=2) + "\n"
    if output is None:
        _stdout.write(text)
        _stdout.flush()
        return
    from bemctl.reports.write import write_report

    write_report(output, text)
    err.print(f"wrote {output}")


@app.command()
def tui() -> None:
    """Live console: queue and runs, run detail, results, experiments (keys: press ?)."""
    import signal

    from bemctl.tui.app import BemctlApp  # Textual loads only for this command

    # Textual owns the terminal and its event loop: a KeyboardInterrupt raised at a random
    # point of that loop is not the way to stop it, so SIGTERM keeps its default here.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    BemctlApp(_settings()).run()


@app.command()
def doctor() -> None:
    """What this machine gives bemctl: Python, torch, CUDA, Triton and the kernel path, NVML,
    store and base-model cache. Read-only; always exits 0."""
    import platform

    import torch

    from engine.evaluation.measure import _nvml_handle
    from engine.models.base_model import (
        EMBEDDED_NAME,
        PretrainPlan,
        cache_key,
        embedded_config_dict,
    )
    from store.db import inspect_schema
    from triton_ops import dispatch

    settings = _settings()
    cuda = torch.cuda.is_available()
    gpu = f"yes: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if cuda else "no"
    on_gpu = cuda and settings.device != "cpu"
    path = dispatch.kernel_path(settings.kernels, on_gpu)
    kernels = (
        f"{settings.kernels}: "
        + {
            "native": "native (Triton kernels compiled for the GPU)",
            "interpreted": "interpreted (Triton kernels under TRITON_INTERPRET=1: slow)",
            "torch": "torch (reference ops)",
        }[path]
    )
    problem = dispatch.triton_problem(cuda=on_gpu)
    if settings.kernels == "triton" and problem:
        kernels = f"triton: cannot run here ({problem}); runs stop with an error"
    elif path == "torch" and settings.kernels == "auto":
        kernels += " because " + (
            "triton is not installed"
            if dispatch.triton_version() is None
            else ("no CUDA device" if not cuda else 'device = "cpu"')
        )
    notes: list[str] = []
    nvml = "yes" if _nvml_handle(torch.device("cuda", 0), notes) is not None else "no"
    nvml += "".join(f" ({n.removeprefix('NVML unavailable: ')})" for n in notes)
    store_path = settings.store_path
    if not store_path.is_file():
        store = f"{store_path}: none yet (the first run creates it)"
    else:
        try:  # the same classification the commands apply when they open it
            store = f"{store_path}: {inspect_schema(store_path).describe()}"
        except BemctlError as exc:
            store = str(exc)
    p = settings.pretrain
    plan = PretrainPlan(p.steps, p.batch_size, p.learning_rate, p.corpus_docs)
    entry = settings.cache_dir / f"{EMBEDDED_NAME}-{cache_key(embedded_config_dict(), plan)}"
    cached = (entry / "model.safetensors").is_file()
    base = f"{entry.name} cached" if cached else f"{entry.name} not cached (next run pre-trains it)"
    rows = [
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", torch.__version__),
        ("cuda available", gpu),
        ("triton", dispatch.triton_version() or "not installed"),
        ("kernels", kernels),
        ("nvml available", nvml),
        ("store", store),
        ("base-model cache", f"{settings.cache_dir}: {base}"),
    ]
    for name, value in rows:
        out.print(f"{name:<17} {value}", highlight=False, markup=False, soft_wrap=True)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (what the console's stop key and `kill` send) is a Ctrl-C: the command puts
    the store in order and says what became of its work. Only the first one is: a second
    SIGTERM while that cleanup runs is ignored rather than cutting it short."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors become one line on stderr with their exit code; Ctrl-C and
    SIGTERM become exit 130 wherever they land, even inside the handling of another error."""
    import signal

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _main()
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(130)
    finally:  # tests call main in-process: leave the caller's handler as it was
        signal.signal(signal.SIGTERM, previous)


def _main() -> None:
    try:
        # Non-standalone typer returns the exit code of typer.Exit (and 130 for Ctrl-C).
        code = app(standalone_mode=False, prog_name="bemctl")
        _stdout.flush()  # buffered output fails here, not in the interpreter's exit
    except Interrupted as exc:
        _say(str(exc))
        sys.exit(exc.exit_code)
    except StdoutError as exc:
        _abandon_stdout()
        if exc.errno != errno.EPIPE:  # a reader that stopped reading is not news
            _say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except BemctlError as exc:
        _say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if _is_click_exception(exc):
            _show_click_error(exc)
            sys.exit(getattr(exc, "exit_code", 2))
        if _is_abort(exc):  # Click without Typer's KeyboardInterrupt -> Exit(130)
            _say("interrupted")
            sys.exit(130)
        if _is_kernel_error(exc):  # a kernel op refusing a call mid-run (kernels = "triton")
            _say(f"error: {exc}")
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        if code == 130:  # Ctrl-C outside the commands that say what became of their work
            _say("interrupted")
        sys.exit(code)


def _is_kernel_error(exc: BaseException) -> bool:
    """triton_ops.KernelConfigError, without importing torch at start-up: if the kernel
    dispatch was never imported, nothing can have raised its error."""
    dispatch = sys.modules.get("triton_ops.dispatch")
    return dispatch is not None and isinstance(exc, dispatch.KernelConfigError)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """Click's exception base classes, wherever this Typer gets Click from.

    Recent Typer releases (0.29 here) raise from their own bundled copy (typer._click),
    older ones from the click package: take the base class from the MRO of what typer
    exports, plus click's own if it is installed, never from a private module path."""
    found: list[type[BaseException]] = [
        cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
    ]
    with contextlib.suppress(ImportError):
        import click

        found.append(click.ClickException)
    return tuple(found)


def _is_click_exception(exc: BaseException) -> bool:
    # By type where we can name it; by name as the fallback for a Click we did not foresee.
    return isinstance(exc, _click_exception_types()) or "ClickException" in _class_names(exc)


def _is_abort(exc: BaseException) -> bool:
    return isinstance(exc, typer.Abort) or "Abort" in _class_names(exc)


def _show_click_error(exc: Exception) -> None:
    """Usage errors as Click's usage line plus one error line (Click's own show() adds a
    blank line and a hint paragraph); anything else as one line."""
    names = _class_names(exc)
    if "NoArgsIsHelpError" in names:  # plain `bemctl`: the help is the answer
        if exc.format_message().strip():  # type: ignore[attr-defined]
            exc.show()  # type: ignore[attr-defined]  # (Typer's rich help is printed already)
        return
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    if "UsageError" in names and ctx is not None:
        _say(ctx.get_usage())
        message += f" (see: {ctx.command_path} --help)"
    _say(f"error: {message}")


def _abandon_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's final flush of what is still buffered
    does not fail a second time with a traceback ('Exception ignored ...')."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
