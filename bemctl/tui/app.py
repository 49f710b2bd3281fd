"""`BemctlApp`: the console's screens, its timer, and the actions shared by all screens.

Live refresh: every `tui.refresh_s` seconds one poll runs on a worker thread. It opens
the read-only store if it exists yet, reads `store.console.refresh_snapshot` (the queue
table and the status line) and whatever the screen on top asks for, then hands the
results to the UI thread. Polls never overlap: a tick that finds one still running is
skipped, so a slow disk makes the console lag, never pile up threads or freeze.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from textual import work
from textual.app import App, ScreenStackError
from textual.screen import Screen

from bemctl.tui import commands
from bemctl.tui.keys import binding, check_overrides, effective_key
from bemctl.tui.local_worker import LocalWorker
from bemctl.tui.screens.base import LiveScreen
from bemctl.tui.screens.experiments import ExperimentsScreen
from bemctl.tui.screens.help import HelpScreen
from bemctl.tui.screens.queue_runs import QueueRunsScreen
from bemctl.tui.screens.results import ResultsScreen
from bemctl.tui.source import StoreSource
from engine.settings import Settings
from store.console import Snapshot, refresh_snapshot
from store.errors import BemctlError
from store.states import TERMINAL_JOB_STATUSES

# How long quitting waits for the console's worker to hand its job back.
WORKER_STOP_TIMEOUT_S = 30.0


class BemctlApp(App[None]):
    CSS_PATH = "bemctl.tcss"
    ENABLE_COMMAND_PALETTE = False  # every action has a key; the footer needs the room
    TITLE = "bemctl"
    MODES = {
        "queue": QueueRunsScreen,
        "results": ResultsScreen,
        "experiments": ExperimentsScreen,
    }
    DEFAULT_MODE = "queue"
    BINDINGS = [
        binding(name)
        for name in (
            "show_queue",
            "show_results",
            "show_experiments",
            "start_worker",
            "stop_worker",
            "export",
            "help",
            "quit",
        )
    ]

    def __init__(self, settings: Settings) -> None:
        # Validate [tui.keys] before anything starts: a typo is a one-line error, not a
        # binding that silently never fires.
        self.keymap = check_overrides(settings.tui.keys)
        super().__init__()
        self.settings = settings
        self.source = StoreSource(settings.store_path, settings.store_busy_timeout_s)
        self.local_worker = LocalWorker(settings)
        self.snapshot: Snapshot | None = None
        self.store_problem: str | None = None
        self._polling = False
        self._poll_again = False

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        self.set_interval(self.settings.tui.refresh_s, self.poll)
        self.poll()

    def key_for(self, action: str) -> str:
        """How the key of `action` is displayed (after [tui.keys] overrides)."""
        return ", ".join(
            self.get_key_display(binding(action).with_key(key))
            for key in effective_key(action, self.keymap).split(",")
        )

    # -- live refresh -------------------------------------------------------------------

    def poll(self) -> None:
        """Start one read of the store for the screen on top (skipped if one is running)."""
        if self._polling:
            self._poll_again = True
            return
        screen = self._top_screen()
        if screen is None:  # starting up or shutting down: nothing to refresh
            return
        self._polling = True
        self._poll_again = False
        self._read(screen)

    def _top_screen(self) -> Screen[Any] | None:
        try:
            return self.screen
        except ScreenStackError:
            return None

    @work(thread=True, group="poll")
    def _read(self, screen: Screen[Any]) -> None:
        snapshot = data = None
        store, problem = self.source.get()
        try:
            if store is not None:
                snapshot = refresh_snapshot(store)
            if isinstance(screen, LiveScreen):
                data = screen.fetch(store)
        except (BemctlError, SQLAlchemyError) as exc:
            # Locked past the busy timeout, file replaced or deleted: say so, retry later.
            problem = str(exc).splitlines()[0]
            self.source.reset()
            snapshot = data = None
        try:
            self.call_from_thread(self._deliver, screen, snapshot, data, problem)
        except RuntimeError:  # the app is shutting down
            pass

    async def _deliver(
        self, screen: Screen[Any], snapshot: Snapshot | None, data: Any, problem: str | None
    ) -> None:
        self._polling = False
        self.snapshot, self.store_problem = snapshot, problem
        # A screen is attached before its composed children are mounted, and keeps being
        # attached while it is removed (popped, or the app shutting down) after its children
        # are gone (`display` is False from then on); showing data then would query widgets
        # that do not exist. A new screen's own on_mount polls again.
        if (
            self.is_running
            and isinstance(screen, LiveScreen)
            and screen.is_attached
            and screen.is_mounted
            and screen.display
        ):
            shown = screen.show(data)
            if inspect.isawaitable(shown):
                await shown
            screen.set_status(self.status_text())
        if self._poll_again or screen is not self._top_screen():
            self.poll()

    def status_text(self) -> str:
        worker = f"console worker: {self.local_worker.state()}"
        if self.snapshot is None:
            return f"{self.store_problem or 'no store yet'} · {worker}"
        counts = self.snapshot.job_counts
        running_workers = len(self.snapshot.workers)
        return (
            f"jobs: {counts.get('queued', 0)} queued, {counts.get('running', 0)} running · "
            f"workers busy: {running_workers} · {worker}"
        )

    # -- commands (each on a thread; the result is a notification) ------------------------

    def run_command(self, fn: Callable[..., str], *args: Any) -> None:
        self._command(fn, *args)

    @work(thread=True, group="command")
    def _command(self, fn: Callable[..., str], *args: Any) -> None:
        try:
            message, severity = fn(*args), "information"
        except BemctlError as exc:
            message, severity = str(exc), "error"
        self.call_from_thread(self._report, message, severity)

    def _report(self, message: str, severity: str) -> None:
        self.notify(message, severity=severity, timeout=6)  # type: ignore[arg-type]
        self.poll()

    def cancel_job(self, job_id: int, job_status: str | None) -> None:
        if job_status in TERMINAL_JOB_STATUSES:
            self.notify(f"job {job_id} is already {job_status}", severity="warning")
            return
        self.run_command(commands.cancel, self.settings, job_id)

    def retry_job(self, job_id: int, job_status: str | None) -> None:
        if job_status not in TERMINAL_JOB_STATUSES:
            self.notify(
                f"job {job_id} is still {job_status}; only finished jobs can be retried",
                severity="warning",
            )
            return
        self.run_command(commands.retry, self.settings, job_id)

    # -- app-wide actions -----------------------------------------------------------------

    def _show_mode(self, mode: str) -> None:
        if self.current_mode == mode:
            while len(self.screen_stack) > 1:  # back to the mode's own screen
                self.pop_screen()
            return
        self.switch_mode(mode)

    def action_show_queue(self) -> None:
        self._show_mode("queue")

    def action_show_results(self) -> None:
        self._show_mode("results")

    def action_show_experiments(self) -> None:
        self._show_mode("experiments")

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_start_worker(self) -> None:
        try:
            pid = self.local_worker.start()
        except BemctlError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(f"worker started (pid {pid}); log: {self.local_worker.log_path}")
        self.poll()

    def action_stop_worker(self) -> None:
        try:
            pid = self.local_worker.stop()
        except BemctlError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(f"stopping worker {pid}; its job goes back to the queue")
        self._await_worker()

    @work(thread=True, group="worker")
    def _await_worker(self) -> None:
        code = self.local_worker.wait(WORKER_STOP_TIMEOUT_S)
        self.call_from_thread(self._report, f"worker stopped (exit code {code})", "information")

    def action_export(self) -> None:
        store, _ = self.source.get()
        self.run_command(commands.export_report, store, self.settings.store_path.parent)

    async def action_quit(self) -> None:
        if self.local_worker.running:
            self.local_worker.stop()
        self.exit()

    def on_unmount(self) -> None:
        if self.local_worker.proc is not None:
            if self.local_worker.running:
                self.local_worker.stop()
            self.local_worker.wait(WORKER_STOP_TIMEOUT_S)
        self.source.close()
