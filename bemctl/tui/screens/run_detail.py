"""Run detail: one run's live loss curve, its latest steps, its job's events, its error;
for an online run also its stream timeline and the stream's events.

The curve is fetched incrementally (only steps after the last one held), so following
a long run costs the same on every tick. The stream is fetched whole (a few hundred live
batches at most) and redrawn only when it changed.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from bemctl.reports.curves import quantity_label
from bemctl.tui.format import duration, phase_text, status_text
from bemctl.tui.keys import binding
from bemctl.tui.screens.base import LiveScreen, StatusLine
from bemctl.tui.widgets.loss_plot import LossPlot
from bemctl.tui.widgets.stream_plot import MARK_COLOURS, StreamPlot
from store.console import RunDetail, StepPoint, run_detail
from store.db import Store
from store.states import JobStatus, RunStatus

LAST_STEPS = 15  # rows of the step table


class RunDetailScreen(LiveScreen):
    BINDINGS = [binding(n) for n in ("back", "cancel", "retry")]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.detail: RunDetail | None = None
        self.curve: list[StepPoint] = []
        self._events_shown = -1
        self._stream_shown: tuple[tuple, tuple] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="run-info", markup=False)
        with Horizontal(id="run-middle"):
            yield LossPlot(id="loss-plot")
            with Vertical(id="run-steps-box"):
                yield DataTable(id="run-steps", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="run-stream"):
            yield StreamPlot(id="stream-plot")
            yield DataTable(id="run-stream-events", cursor_type="row", zebra_stripes=True)
        yield Static(id="run-error", markup=False)
        yield DataTable(id="run-events", cursor_type="row", zebra_stripes=True)
        yield StatusLine()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"Run {self.run_id}"
        self.query_one("#run-steps", DataTable).add_columns("step", "loss", "lr", "elapsed")
        self.query_one("#run-events", DataTable).add_columns("time", "kind", "run", "message")
        self.query_one("#run-stream-events", DataTable).add_columns("batch", "kind", "detail")
        self.query_one("#run-error").display = False
        self.query_one("#run-stream").display = False  # until the run shows a live batch

    # -- data -----------------------------------------------------------------------

    def fetch(self, store: Store | None) -> RunDetail | None:
        if store is None:
            return None
        last = self.curve[-1].step if self.curve else -1
        return run_detail(store, self.run_id, after_step=last)

    def show(self, data: RunDetail | None) -> None:
        info = self.query_one("#run-info", Static)
        if data is None:
            info.update(f"run {self.run_id}: not in the store")
            return
        self.detail = data
        last = self.curve[-1].step if self.curve else -1
        new = [p for p in data.steps if p.step > last]
        if new or not self.curve:
            self.curve.extend(new)
            self.query_one(LossPlot).set_curve(
                [p.step for p in self.curve],
                [p.loss for p in self.curve],
                quantity_label(data.run.curve_quantity),
            )
            self._show_steps()
        info.update(_info_text(data))
        self._show_stream(data)
        self._show_error(data)
        if len(data.events) != self._events_shown:
            self._show_events(data)

    def _show_steps(self) -> None:
        table = self.query_one("#run-steps", DataTable)
        table.clear()
        for p in reversed(self.curve[-LAST_STEPS:]):
            table.add_row(
                Text(str(p.step), justify="right"),
                Text(f"{p.loss:.4f}", justify="right"),
                Text(f"{p.lr:.2e}", justify="right"),
                Text(f"{p.elapsed_s:.1f}s", justify="right"),
            )

    def _show_stream(self, data: RunDetail) -> None:
        """Only an online run has a stream: every other run keeps the box hidden."""
        shown = (data.stream_points, data.stream_events)
        if shown == self._stream_shown:
            return
        self._stream_shown = shown
        self.query_one("#run-stream").display = bool(data.stream_points)
        if not data.stream_points:
            return
        self.query_one(StreamPlot).set_stream(data.stream_points, data.stream_events)
        table = self.query_one("#run-stream-events", DataTable)
        table.clear()
        for e in data.stream_events:
            table.add_row(
                Text(str(e.batch), justify="right"),
                Text(e.kind, style=MARK_COLOURS.get(e.kind, "")),  # as on the plot
                Text(e.detail),
            )
        if data.stream_events:
            table.move_cursor(row=len(data.stream_events) - 1, animate=False)

    def _show_error(self, data: RunDetail) -> None:
        run = data.run
        error = run.error or (
            run.job_error if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) else None
        )
        box = self.query_one("#run-error", Static)
        box.display = bool(error)
        if error:
            box.update(Text(f"error: {error}", style="bold red"))

    def _show_events(self, data: RunDetail) -> None:
        table = self.query_one("#run-events", DataTable)
        table.clear()
        for e in data.events:
            mine = e.run_id is None or e.run_id == self.run_id
            table.add_row(
                _local_time(e.at),
                e.kind,
                "" if e.run_id is None else str(e.run_id),
                Text(e.message, style="" if mine else "dim"),
            )
        if data.events:
            table.move_cursor(row=len(data.events) - 1, animate=False)
        self._events_shown = len(data.events)

    # -- actions --------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_cancel(self) -> None:
        run = self.detail.run if self.detail else None
        if run is None or run.job_id is None:
            self.notify("this run has no job to cancel", severity="warning")
        else:
            self.bemctl.cancel_job(run.job_id, run.job_status)

    def action_retry(self) -> None:
        run = self.detail.run if self.detail else None
        if run is None or run.job_id is None:
            self.notify("this run has no job to retry", severity="warning")
        else:
            self.bemctl.retry_job(run.job_id, run.job_status)


def _local_time(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def _info_text(data: RunDetail) -> Text:
    r = data.run
    text = Text()
    text.append(f"run {r.id} ", style="bold")
    text.append(f"{r.experiment} · {r.role} · seed {r.seed} · ")
    text.append_text(status_text(r.status))
    loss = "" if r.last_loss is None else f" · loss {r.last_loss:.4f}"
    text.append(f" · step {r.current_step}/{r.total_steps}{loss}")
    text.append(f" · elapsed {duration(r.elapsed_s) or '-'}")
    mode = "quick" if r.quick else "full"
    text.append(f"\n{r.device} · {mode} · attempt {r.attempt}")
    if r.job_id is not None:
        text.append(f" · job {r.job_id} ({r.job_status}) · batch {r.batch_id}")
        if r.job_status == JobStatus.RUNNING and r.job_phase:
            text.append(f" · {phase_text(r.job_phase_progress) or r.job_phase}", style="cyan")
    return text
