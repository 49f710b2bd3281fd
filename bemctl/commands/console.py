"""`tui`: the live Textual console (bemctl.tui), which owns the terminal while it runs."""

from __future__ import annotations

from bemctl.commands.common import get_settings


def tui() -> None:
    """Live console: queue and runs, run detail, results, experiments (keys: press ?)."""
    import signal

    from bemctl.tui.app import BemctlApp  # Textual loads only for this command

    # Textual owns the terminal and its event loop: a KeyboardInterrupt raised at a random
    # point of that loop is not the way to stop it, so SIGTERM keeps its default here.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    BemctlApp(get_settings()).run()
