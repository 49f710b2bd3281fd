"""The `bemctl` command line (Typer): the app, its global --config, the commands in the
order `bemctl --help` lists them, and the entry point. Every user error ends as one line
and exit code 2 (see bemctl.exit_handling); the commands live in bemctl.commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bemctl import exit_handling
from bemctl.commands import console, doctor, inspect, report, run, worker
from bemctl.commands.common import set_config_path

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run adapter (BEM) experiments against their baseline and decide with statistics.",
)


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
    set_config_path(config)


app.command()(run.run)
app.command()(run.queue)
app.command()(worker.worker)
app.command()(worker.cancel)
app.command()(worker.retry)
app.command()(run.validate)
app.command("list")(inspect.list_cmd)
app.command()(inspect.show)
app.command()(report.report)
app.command()(console.tui)
app.command()(doctor.doctor)


def main() -> None:
    """Entry point: user errors become one line on stderr with their exit code; Ctrl-C and
    SIGTERM become exit 130 wherever they land, even inside the handling of another error."""
    # `app` is looked up at each call (tests replace it)
    exit_handling.run_guarded(lambda: app(standalone_mode=False, prog_name="bemctl"))
