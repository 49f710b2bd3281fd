"""Usage errors: Click's usage line and one error line on stderr, exit 2, never a traceback.

Every command of the Typer app is covered by iterating over the registered commands, so a
command added later is tested without touching this file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from bemctl import cli as cli_module
from bemctl import exit_handling
from engine.settings import MAX_SEED

HUGE = "9" * 23  # beyond SQLite's signed 64-bit INTEGER
INT64_MAX = str(2**63 - 1)


def _commands() -> dict[str, object]:
    return dict(typer.main.get_command(cli_module.app).commands)  # type: ignore[attr-defined]


def _required_arguments(command: object) -> list[str]:
    return [
        p.name
        for p in command.params  # type: ignore[attr-defined]
        if p.param_type_name == "argument" and p.required
    ]


def _assert_usage_error(result, command_path: str) -> None:
    assert result.code == 2, result
    assert "Traceback" not in result.err + result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"Usage: {command_path} ")
    assert lines[1].startswith("error: ") and f"(see: {command_path} --help)" in lines[1]


def test_the_app_has_the_commands_the_readme_lists() -> None:
    """Guards the loops below against iterating over nothing."""
    assert {"run", "queue", "worker", "cancel", "retry", "validate", "list", "show"} <= set(
        _commands()
    )
    assert {"report", "tui", "doctor"} <= set(_commands())


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_refuses_an_unknown_option(project: Path, cli, name: str) -> None:
    result = cli(name, "--no-such-option")
    _assert_usage_error(result, f"bemctl {name}")
    assert "No such option: --no-such-option" in result.err


def test_the_group_refuses_an_unknown_option_and_command(project: Path, cli) -> None:
    _assert_usage_error(cli("--no-such-option"), "bemctl")
    result = cli("frobnicate")
    _assert_usage_error(result, "bemctl")
    assert "No such command 'frobnicate'" in result.err


@pytest.mark.parametrize(
    "name", sorted(n for n, c in _commands().items() if _required_arguments(c))
)
def test_every_missing_required_argument_is_a_usage_error(project: Path, cli, name: str) -> None:
    result = cli(name)
    _assert_usage_error(result, f"bemctl {name}")
    assert "Missing argument '" in result.err


def test_commands_with_required_arguments_are_found() -> None:
    with_args = {n for n, c in _commands().items() if _required_arguments(c)}
    assert {"run", "queue", "cancel", "retry", "show"} <= with_args


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("run", "--bogus"), "No such option: --bogus"),
        (("show",), "Missing argument"),
        (("run", "--experiments", "v1_dynrank"), "No such option: --experiments"),
        (("show", "abc"), "valid integer"),
        (("list", "--limit", "0"), "greater than or equal to 1"),
        (("show", HUGE), f"less than or equal to {INT64_MAX}"),
        (("retry", HUGE), f"less than or equal to {INT64_MAX}"),
        (("retry", "--job", HUGE), f"less than or equal to {INT64_MAX}"),
        (("show", "0"), "greater than or equal to 1"),
        (("list", "--limit", HUGE), f"less than or equal to {INT64_MAX}"),
        (("queue", "v1_dynrank", "--priority", HUGE), f"less than or equal to {INT64_MAX}"),
        (("run", "v1_dynrank", "--quick", "--seed", "1" + "0" * 23), f"or equal to {MAX_SEED}"),
        (("run", "v1_dynrank", "--quick", "--seed", "-1"), "greater than or equal to 0"),
        (("worker", "--max-jobs", HUGE), f"less than or equal to {INT64_MAX}"),
    ],
)
def test_bad_values_named_in_the_issue(project: Path, cli, args: tuple[str, ...], expected) -> None:
    result = cli(*args)
    _assert_usage_error(result, f"bemctl {args[0]}")
    assert expected in result.err
    assert not (project / ".bemctl").exists()  # refused before anything was opened


def test_cancel_with_a_huge_run_id_is_one_line(project: Path, cli) -> None:
    """`cancel` takes a run id or an experiment name, so it checks the range itself."""
    result = cli("cancel", HUGE)
    assert result.code == 2
    assert result.err == f"error: run {HUGE}: out of range (run ids are at most {INT64_MAX})\n"


def test_the_real_entry_point_prints_two_lines(project: Path) -> None:
    """Through `python -m bemctl`, whatever Click copy the installed Typer raises from."""
    proc = subprocess.run(
        [sys.executable, "-m", "bemctl", "run", "--bogus"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    usage, error = proc.stderr.splitlines()
    assert usage.startswith("Usage: bemctl run [OPTIONS] ")  # Typer's spelling of the args
    assert error == "error: No such option: --bogus (see: bemctl run --help)"


def test_no_arguments_shows_the_help(project: Path, cli) -> None:
    result = cli()
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "Usage: bemctl" in result.out + result.err and "run" in result.out + result.err


def test_click_exception_classes_come_from_what_typer_raises() -> None:
    """Derived from typer's own exports, so a Typer that bundles Click (typer._click) and
    one that uses the click package are both covered."""
    types = exit_handling._click_exception_types()
    assert types and all(t.__name__ == "ClickException" for t in types)
    assert issubclass(typer.BadParameter, types)


def test_an_unforeseen_click_copy_is_still_caught_by_name(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ClickException from a Click the isinstance check does not know (another vendored
    copy): recognised from its class hierarchy, shown as one line with its exit code."""

    class ClickException(Exception):  # named as Click names it
        exit_code = 3

        def format_message(self) -> str:
            return "something Click-shaped went wrong"

    class FileError(ClickException):
        pass

    def raising(*args, **kwargs):
        raise FileError()

    monkeypatch.setattr(cli_module, "app", raising)
    result = cli("list")
    assert result.code == 3
    assert result.err == "error: something Click-shaped went wrong\n"
