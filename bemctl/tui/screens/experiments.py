"""Experiments: the spec files of `experiments_dirs`, checked live, queued from here.

Problems are shown inline under each spec (as `bemctl validate` words them), so a broken
spec is fixed before it is queued rather than failing on a worker later.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Static
from textual.widgets.data_table import CellDoesNotExist

from bemctl.tui import commands
from bemctl.tui.keys import binding
from bemctl.tui.screens.base import LiveScreen, StatusLine
from bemctl.tui.specs import SpecEntry, SpecScanner
from store.db import Store

SELECTED = Text("●", style="bold cyan")
# Not "": DataTable cannot size an auto-height row around an empty cell (IndexError).
UNSELECTED = " "
STATUS_STYLES = {"ok": "green", "invalid": "bold red", "not implemented": "yellow"}


class ExperimentsScreen(LiveScreen):
    AUTO_FOCUS = "#experiments-table"
    BINDINGS = [binding(n) for n in ("select", "enqueue", "toggle_quick")]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[SpecEntry] | None = None
        self.selected: set[str] = set()
        self.quick = True
        self.scanner = SpecScanner()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="experiments-info", markup=False)
        yield DataTable(id="experiments-table", cursor_type="row", zebra_stripes=True)
        yield StatusLine()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Experiments"
        table = self.table
        for label in ("", "experiment", "variant", "status", "file / problems"):
            table.add_column(label, key=label or "sel")
        self._show_info()

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#experiments-table", DataTable)

    # -- data -----------------------------------------------------------------------

    def fetch(self, store: Store | None) -> list[SpecEntry]:
        return self.scanner.scan(self.bemctl.settings.experiment_paths)

    def show(self, data: list[SpecEntry]) -> None:
        if data == self.entries:
            return
        self.entries = data
        names = {e.name for e in data}
        self.selected &= names
        table = self.table
        current = self._current_name()
        table.clear()
        for e in data:
            where = _relative(e.path, self.bemctl.settings.base_dir)
            detail = Text(where)
            for problem in e.problems:
                detail.append("\n" + problem, style="red")
            table.add_row(
                SELECTED if e.name in self.selected else UNSELECTED,
                e.name,
                e.variant,
                Text(e.status, style=STATUS_STYLES.get(e.status, "")),
                detail,
                key=e.name,
                height=None,  # a spec's problems are listed under it, one per line
            )
        if current in names:
            table.move_cursor(row=table.get_row_index(current), animate=False)
        self._show_info()

    def _current_name(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except CellDoesNotExist:
            return None

    def _show_info(self) -> None:
        mode = "quick (bemctl.toml [quick] sizes)" if self.quick else "full (the specs' sizes)"
        picked = ", ".join(sorted(self.selected)) or "none (enqueue takes the highlighted one)"
        self.query_one("#experiments-info", Static).update(f"mode: {mode} · selected: {picked}")

    # -- actions --------------------------------------------------------------------

    def action_select(self) -> None:
        name = self._current_name()
        if name is None:
            return
        if name in self.selected:
            self.selected.discard(name)
        else:
            self.selected.add(name)
        self.table.update_cell(name, "sel", SELECTED if name in self.selected else UNSELECTED)
        self._show_info()

    def action_toggle_quick(self) -> None:
        self.quick = not self.quick
        self._show_info()

    def action_enqueue(self) -> None:
        names = sorted(self.selected) or ([n] if (n := self._current_name()) else [])
        if not names:
            self.notify("no experiment selected", severity="warning")
            return
        by_name = {e.name: e for e in self.entries or []}
        blocked = [n for n in names if n in by_name and not by_name[n].runnable]
        if blocked:
            why = "; ".join(f"{n}: {by_name[n].status}" for n in blocked)
            self.notify(f"cannot queue {why}", severity="error")
            return
        self.bemctl.run_command(commands.enqueue, self.bemctl.settings, names, self.quick)
        self.selected.clear()
        for name in names:
            self.table.update_cell(name, "sel", UNSELECTED)
        self._show_info()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
