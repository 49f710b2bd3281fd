"""The `bemctl` command line (Typer). Every user error ends as one line and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bemctl.errors import BemctlError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run adapter (BEM) experiments against their baseline and decide with statistics.",
)
out = Console(width=None if sys.stdout.isatty() else 140)
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
    from bemctl.settings import load_settings

    return load_settings(_state["config"])


def _open_store(settings, readonly: bool = False):
    from store.db import Store

    return Store(
        settings.store_path, readonly=readonly, busy_timeout_s=settings.store_busy_timeout_s
    )


@app.command()
def run(
    experiments: Annotated[list[str], typer.Argument(help="experiment ids or spec files")],
    quick: Annotated[
        bool, typer.Option("--quick", help="small sizes from bemctl.toml [quick]")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="seed for data, init and bootstrap")] = None,
    bootstrap_samples: Annotated[int | None, typer.Option(min=100, help="BCa resamples")] = None,
    fdr_alpha: Annotated[float | None, typer.Option(help="BH-FDR level, in (0, 1)")] = None,
    statistical_power: Annotated[
        float | None,
        typer.Option(help="target power, in (0, 1): report the n each metric would need"),
    ] = None,
    budget_tolerance: Annotated[
        float | None, typer.Option(help="param/FLOP parity ±, in [0, 1)")
    ] = None,
) -> None:
    """Train baseline and variant, evaluate, test, apply the gates, print the verdicts."""
    from bemctl.progress_view import RichProgress
    from engine.plan import RunOptions
    from engine.runner import ExperimentRunner, resolve_specs

    if fdr_alpha is not None and not 0 < fdr_alpha < 1:
        raise BemctlError(f"--fdr-alpha: must be between 0 and 1, exclusive (got {fdr_alpha})")
    if statistical_power is not None and not 0 < statistical_power < 1:
        raise BemctlError(
            f"--statistical-power: must be between 0 and 1, exclusive (got {statistical_power})"
        )
    if budget_tolerance is not None and not 0 <= budget_tolerance < 1:
        raise BemctlError(f"--budget-tolerance: must be in [0, 1) (got {budget_tolerance})")
    settings = _settings()
    specs = resolve_specs(experiments, settings)
    options = RunOptions(
        quick=quick,
        seed=seed,
        bootstrap_samples=bootstrap_samples,
        fdr_alpha=fdr_alpha,
        budget_tolerance=budget_tolerance,
        target_power=statistical_power,
    )
    with _open_store(settings) as store, RichProgress(err) as progress:
        outcomes = ExperimentRunner(settings, store, options, progress).run(specs)
    _print_verdicts(outcomes)


def _print_verdicts(outcomes) -> None:
    colours = {"PROMOTE": "green", "REJECT": "red"}  # INCONCLUSIVE: yellow
    for o in outcomes:
        table = Table(
            title=f"{o.name}: [bold {colours.get(o.verdict, 'yellow')}]{o.verdict}"
            f"[/] (comparison {o.comparison_id})",
            title_justify="left",
        )
        columns = (
            "metric",
            "n",
            "(b, c)",
            "baseline",
            "variant",
            "Δ",
            "BCa CI",
            "test",
            "p",
            "adj. p",
            "d_z",
            "power",
            "MDE",
        )
        for col in columns:
            table.add_column(col, justify="left" if col in ("metric", "test") else "right")
        for m in o.metrics:
            r = m.stats
            table.add_row(
                r.metric,
                str(r.n),
                ""
                if r.test.discordant is None
                else f"({r.test.discordant[0]}, {r.test.discordant[1]})",
                f"{r.baseline_mean:.4f}",
                f"{r.variant_mean:.4f}",
                f"{r.interval.estimate:+.4f}",
                f"[{r.interval.low:+.4f}, {r.interval.high:+.4f}]",
                r.test.name,
                f"{r.test.p_value:.3g}",
                f"{m.p_adjusted:.3g}",
                _fmt(r.effect.d_z),
                _fmt(r.power.power, ".2f"),
                _fmt(r.power.mde, ".4f"),
            )
        out.print(table)
        ratios = (
            f"params ×{o.param_ratio:.3f}  FLOPs ×{o.flop_ratio:.3f}  latency p50 ×"
            f"{_fmt(o.latency_ratio)}  memory ×{_fmt(o.memory_ratio)}"
        )
        if o.kv_hit_rate is not None:
            ratios += f"  KV hit rate {o.kv_hit_rate:.3f}"
        if o.pregen_ms is not None:
            ratios += f"  pre-generation {o.pregen_ms:.2f} ms"
        out.print(f"  {ratios}  (family of {o.family_size} hypotheses)")
        for reason in o.reasons:
            mark = "[yellow]?[/]" if reason.startswith("underpowered") else "[red]✗[/]"
            out.print(f"  {mark} {escape(reason)}")
        if any(m.stats.power.n_needed for m in o.metrics):
            needed = ", ".join(
                f"{m.metric} n≈{m.stats.power.n_needed}"
                for m in o.metrics
                if m.stats.power.n_needed
            )
            target = o.metrics[0].stats.power.target_power
            out.print(f"  examples needed for power {target:.2f} at the observed effect: {needed}")
        if not o.reasons:
            out.print("  [green]✓ all gates passed[/]")
    if outcomes:
        names = " ".join(o.name for o in outcomes)
        out.print(f"\nstored; write it up with: bemctl report {names} --format md")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


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
    from bemctl.settings import CONFIG_NAME, find_config, settings_errors
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
            if not found and path.suffix in (".yml", ".yaml"):
                found = _name_mismatch(path)
        problems.extend(found)
        if not found:
            out.print(f"ok  {path}")
    for line in problems:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)


def _name_mismatch(path: Path) -> list[str]:
    from engine.spec import load_spec

    name = load_spec(path).spec.experiment_name
    if name != path.stem:
        return [f"{path}: experiment_name: must match the file name {path.stem!r} (got {name!r})"]
    return []


@app.command("list")
def list_cmd(limit: Annotated[int, typer.Option(min=1, help="recent runs to show")] = 20) -> None:
    """Experiments available to run, and the most recent runs in the store."""
    from engine.spec import spec_errors, spec_files
    from engine.variants.registry import get_entry

    settings = _settings()
    table = Table(title="experiments", title_justify="left")
    for col in ("id", "variant", "status", "file"):
        table.add_column(col)
    for name, path in spec_files(settings.experiment_paths).items():
        problems = spec_errors(path)
        if problems:
            table.add_row(name, "?", "[red]invalid[/]", str(path))
            continue
        from engine.spec import load_spec

        variant = load_spec(path).spec.bem_config.variant
        ready = "runnable" if get_entry(variant).builder else "not implemented yet"
        table.add_row(name, variant, ready, str(path))
    out.print(table)
    if not settings.store_path.exists():
        out.print("no runs yet")
        return
    from store import queries

    with _open_store(settings, readonly=True) as store:
        runs = queries.list_runs(store, limit)
        names = {e.id: e.name for e in queries.list_experiments(store)}
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
def show(run_id: Annotated[int, typer.Argument(help="run id from `bemctl list`")]) -> None:
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
        sys.stdout.write(text)
        return
    _write_atomically(output, text)
    err.print(f"wrote {output}")


def _write_atomically(path: Path, text: str) -> None:
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise BemctlError(f"{path}: cannot write report: {exc.strerror}") from None


def main() -> None:
    """Entry point: user errors become one line on stderr with their exit code."""
    try:
        # Non-standalone typer returns the exit code of typer.Exit (and 130 for Ctrl-C).
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130:
                err.print(
                    "interrupted: unfinished runs were marked cancelled; "
                    "no partial verdicts written"
                )
            sys.exit(code)
    except BemctlError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted: unfinished runs were marked cancelled; no partial verdicts written")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and friends
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            err.print("aborted")
            sys.exit(130)
        raise
