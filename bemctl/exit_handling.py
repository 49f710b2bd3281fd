"""How a `bemctl` invocation ends: user errors as one line on stderr with their exit code,
usage errors as Click's usage line plus one error line, Ctrl-C and SIGTERM as exit 130
wherever they land, and a failing standard output as one line (none for a closed pipe).

Kept apart from the commands: they raise (BemctlError, Interrupted, typer.Exit), this
module alone decides what the user sees and which code the process exits with.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from bemctl.output import StdoutError, say, stdout
from store.errors import BemctlError


class Interrupted(BemctlError):
    """Ctrl-C or SIGTERM, after the command has put the store in order: the message says
    what became of its work (printed as is, exit 130)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=130)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (what the console's stop key and `kill` send) is a Ctrl-C: the command puts
    the store in order and says what became of its work. Only the first one is: a second
    SIGTERM while that cleanup runs is ignored rather than cutting it short."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_guarded(invoke: Callable[[], Any]) -> None:
    """Run the app (`invoke` returns its exit code, as non-standalone Typer does) and exit
    as described above; SIGTERM is a KeyboardInterrupt meanwhile."""
    import signal

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _run(invoke)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    finally:  # tests call main in-process: leave the caller's handler as it was
        signal.signal(signal.SIGTERM, previous)


def _run(invoke: Callable[[], Any]) -> None:
    try:
        # Non-standalone typer returns the exit code of typer.Exit (and 130 for Ctrl-C).
        code = invoke()
        stdout.flush()  # buffered output fails here, not in the interpreter's exit
    except Interrupted as exc:
        say(str(exc))
        sys.exit(exc.exit_code)
    except StdoutError as exc:
        _abandon_stdout()
        if exc.errno != errno.EPIPE:  # a reader that stopped reading is not news
            say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except BemctlError as exc:
        say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if _is_click_exception(exc):
            _show_click_error(exc)
            sys.exit(getattr(exc, "exit_code", 2))
        if _is_abort(exc):  # Click without Typer's KeyboardInterrupt -> Exit(130)
            say("interrupted")
            sys.exit(130)
        if _is_kernel_error(exc):  # a kernel op refusing a call mid-run (kernels = "triton")
            say(f"error: {exc}")
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        if code == 130:  # Ctrl-C outside the commands that say what became of their work
            say("interrupted")
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
        say(ctx.get_usage())
        message += f" (see: {ctx.command_path} --help)"
    say(f"error: {message}")


def _abandon_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's final flush of what is still buffered
    does not fail a second time with a traceback ('Exception ignored ...')."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
