"""The Queue/Runs table, updated in place on every tick.

Rebuilding a thousand-row table each second would flicker, lose the cursor and cost the
UI thread real time; instead only changed cells are rewritten, and the table is rebuilt
only when the order of its rows changes (a new run, a different sort or filter), with the
cursor put back on the row it was on.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from bemctl.tui.format import duration, percent, phase_text, status_text
from bemctl.tui.keys import binding
from store.console import QueueRow

COLUMNS = (
    ("run", "run"),
    ("job", "job"),
    ("experiment", "experiment"),
    ("role", "role"),
    ("seed", "seed"),
    ("status", "status"),
    ("progress", "progress"),
    ("step", "step"),
    ("loss", "loss"),
    ("elapsed", "elapsed"),
    ("ETA", "eta"),
    ("phase", "phase"),
)

Cells = tuple[str | Text, ...]


PHASE_WIDTH = 72


def row_cells(row: QueueRow) -> Cells:
    # a job's own line counts its phase's steps (e.g. pre-training), a run's its training
    step = f"{row.current_step}/{row.total_steps}" if row.run_id or row.total_steps else ""
    phase = phase_text(row.phase_progress, PHASE_WIDTH) or row.phase or ""
    if len(phase) > PHASE_WIDTH:
        phase = phase[: PHASE_WIDTH - 1] + "…"
    return (
        "" if row.run_id is None else str(row.run_id),
        "" if row.job_id is None else str(row.job_id),
        row.experiment,
        row.role,
        "" if row.seed is None else str(row.seed),
        status_text(row.status),
        Text(percent(row.progress), justify="right"),
        Text(step, justify="right"),
        Text("" if row.last_loss is None else f"{row.last_loss:.4f}", justify="right"),
        Text(duration(row.elapsed_s), justify="right"),
        Text(duration(row.eta_s), justify="right"),
        phase,
    )


class QueueTable(DataTable[str | Text]):
    # Enter opens the run (instead of DataTable's select_cursor) and shows in the footer;
    # its id lets `[tui.keys] open_run` move it like any other action.
    # (A subclass binding replaces the inherited one for the same key.)
    BINDINGS = [binding("open_run", "screen.open_run")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._order: list[str] = []
        self._cells: dict[str, Cells] = {}
        self.rows_by_key: dict[str, QueueRow] = {}

    def on_mount(self) -> None:
        for label, key in COLUMNS:
            self.add_column(label, key=key)

    def current(self) -> QueueRow | None:
        """The row under the cursor, if any."""
        key = self._selected_key
        return None if key is None else self.rows_by_key.get(key)

    @property
    def _selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except CellDoesNotExist:
            return None

    def sync(self, rows: Sequence[QueueRow]) -> None:
        """Show exactly `rows`, in this order, touching as little as possible.

        Rows are frozen dataclasses, so an unchanged one (every finished run) is skipped
        with one comparison; only the running ones get their cells re-rendered.
        """
        order = [r.key for r in rows]
        previous = self.rows_by_key
        self.rows_by_key = {r.key: r for r in rows}
        if order != self._order:
            self._cells = {r.key: row_cells(r) for r in rows}
            self._rebuild(order)
            return
        for row in rows:
            if previous.get(row.key) == row:
                continue
            old, new = self._cells[row.key], row_cells(row)
            for (_, column), before, after in zip(COLUMNS, old, new, strict=True):
                if before != after:
                    self.update_cell(row.key, column, after, update_width=True)
            self._cells[row.key] = new

    def _rebuild(self, order: list[str]) -> None:
        selected = self._selected_key
        self.clear()
        for key in order:
            self.add_row(*self._cells[key], key=key)
        self._order = order
        if selected is not None and selected in self._cells:
            self.move_cursor(row=order.index(selected), animate=False)
