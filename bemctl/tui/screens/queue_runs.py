"""Queue/Runs: every run and every job still waiting for one, live.

Progress, loss, elapsed and ETA come from the run rows the workers update (see
store.console), so any worker process, started here or elsewhere, shows up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Input, Static

from bemctl.tui.keys import binding
from bemctl.tui.screens.base import LiveScreen, StatusLine
from bemctl.tui.widgets.queue_table import QueueTable
from store.console import QueueRow, Snapshot, row_matches


def _nulls_last(value: Callable[[QueueRow], Any]) -> Callable[[QueueRow], Any]:
    def key(row: QueueRow) -> Any:
        v = value(row)
        return (v is None, v if v is not None else 0)

    return key


# The sort key cycles through these; "newest" is store.console's order (newest job first).
SORTS: tuple[tuple[str, Callable[[QueueRow], Any] | None], ...] = (
    ("newest", None),
    ("experiment", lambda r: r.experiment),
    ("role", lambda r: r.role),
    ("seed", _nulls_last(lambda r: r.seed)),
    ("status", lambda r: r.status),
    ("progress", _nulls_last(lambda r: r.progress)),
    ("loss", _nulls_last(lambda r: r.last_loss)),
    ("elapsed", _nulls_last(lambda r: r.elapsed_s)),
    ("ETA", _nulls_last(lambda r: r.eta_s)),
)


class FilterInput(Input):
    BINDINGS = [Binding("escape", "screen.clear_filter", "Clear filter", show=False)]


class QueueRunsScreen(LiveScreen):
    AUTO_FOCUS = "#queue-table"
    BINDINGS = [binding(n) for n in ("filter", "sort", "cancel", "retry")]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort_index = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterInput(placeholder="filter: experiment, status or role", id="filter")
        yield Static(id="queue-info", markup=False)
        yield Static(id="empty", markup=False)
        yield QueueTable(id="queue-table")
        yield StatusLine()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Queue / Runs"

    @property
    def table(self) -> QueueTable:
        return self.query_one(QueueTable)

    # -- data -----------------------------------------------------------------------

    def show(self, data: Any = None) -> None:
        snapshot: Snapshot | None = self.bemctl.snapshot
        empty = self.query_one("#empty", Static)
        if snapshot is None:
            problem = self.bemctl.store_problem or "no store yet"
            empty.update(
                f"{problem}\n\nNothing has been queued yet. Press "
                f"{self.bemctl.key_for('show_experiments')} for Experiments, select with "
                f"{self.bemctl.key_for('select')} and press "
                f"{self.bemctl.key_for('enqueue')}; or run `bemctl queue EXP` in a shell.\n"
                f"Looking for the store every {self.bemctl.settings.tui.refresh_s:g} s."
            )
        elif not snapshot.rows:
            empty.update(
                "The store has no runs or queued jobs yet. Queue experiments from the "
                f"Experiments screen ({self.bemctl.key_for('show_experiments')})."
            )
        empty.display = snapshot is None or not snapshot.rows
        self.table.display = not empty.display
        rows = self.visible_rows(snapshot)
        self.table.sync(rows)
        total = 0 if snapshot is None else len(snapshot.rows)
        info = f"{len(rows)} of {total} rows · sort: {SORTS[self.sort_index][0]}"
        if self.filter_text:
            info += f" · filter: {self.filter_text!r}"
        self.query_one("#queue-info", Static).update(info)

    def visible_rows(self, snapshot: Snapshot | None) -> list[QueueRow]:
        if snapshot is None:
            return []
        rows = [r for r in snapshot.rows if row_matches(r, self.filter_text)]
        key = SORTS[self.sort_index][1]
        return rows if key is None else sorted(rows, key=key)  # stable: ties stay newest-first

    # -- actions --------------------------------------------------------------------

    def action_open_run(self) -> None:
        row = self.table.current()
        if row is None:
            self.notify("no row selected", severity="warning")
        elif row.run_id is None:
            self.notify(f"job {row.job_id} has no runs yet ({row.status})", severity="warning")
        else:
            from bemctl.tui.screens.run_detail import RunDetailScreen

            self.app.push_screen(RunDetailScreen(row.run_id))

    @on(QueueTable.RowSelected, "#queue-table")
    def _row_clicked(self) -> None:
        # Enter is bound to open_run directly; this is the mouse (click on the cursor row).
        self.action_open_run()

    @on(QueueTable.HeaderSelected, "#queue-table")
    def _header_clicked(self, event: QueueTable.HeaderSelected) -> None:
        wanted = str(event.column_key.value).casefold()
        self.sort_index = next(
            (i for i, (name, _) in enumerate(SORTS) if name.casefold() == wanted), 0
        )
        self.show()

    def action_filter(self) -> None:
        box = self.query_one(FilterInput)
        box.add_class("-visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one(FilterInput)
        box.value = ""
        box.remove_class("-visible")
        self.table.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.show()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("-visible")
        self.table.focus()

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.show()

    def action_cancel(self) -> None:
        row = self.table.current()
        if row is None or row.job_id is None:
            self.notify("no job selected", severity="warning")
        else:
            self.bemctl.cancel_job(row.job_id, row.job_status)

    def action_retry(self) -> None:
        row = self.table.current()
        if row is None or row.job_id is None:
            self.notify("no job selected", severity="warning")
        else:
            self.bemctl.retry_job(row.job_id, row.job_status)
