"""`?`: every key, as bound now (after [tui.keys] overrides), and where it works."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from bemctl.tui.keys import ACTIONS, binding

if TYPE_CHECKING:
    from bemctl.tui.app import BemctlApp

ABOUT = (
    "The console re-reads the store (read-only) every tui.refresh_s seconds, so progress "
    "written by any worker shows up. Enqueue, cancel and retry write through their own "
    "short-lived connection; a worker started here is a `bemctl worker` process (log beside "
    "the store) and stopping it hands its job back to the queue. Keys can be changed in "
    'bemctl.toml under [tui.keys], e.g. cancel = "k".'
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [binding("back", "dismiss_help"), binding("help", "dismiss_help")]

    def compose(self) -> ComposeResult:
        app = cast("BemctlApp", self.app)
        # (key, action, where, [tui.keys] name): kept for tests and built once per opening
        self.rows = [(app.key_for(a.name), a.description, a.where, a.name) for a in ACTIONS]
        table = Table(title="bemctl tui keys", title_justify="left", expand=True)
        for column in ("key", "action", "where", "[tui.keys] name"):
            table.add_column(Text(column))  # Text: the brackets are not markup
        for row in self.rows:
            table.add_row(*row)
        with VerticalScroll(id="help-box"):
            yield Static(table, id="help-keys")
            yield Static(ABOUT, id="help-about", markup=False)
            yield Static(f"store: {app.settings.store_path}", id="help-store", markup=False)

    def action_dismiss_help(self) -> None:
        self.dismiss()
