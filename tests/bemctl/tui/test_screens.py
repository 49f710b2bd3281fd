"""Pilot tests of the console against a store filled by one real job (see conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from bemctl.tui.app import BemctlApp
from bemctl.tui.screens.experiments import ExperimentsScreen
from bemctl.tui.screens.help import HelpScreen
from bemctl.tui.screens.queue_runs import QueueRunsScreen
from bemctl.tui.screens.results import ResultsScreen
from bemctl.tui.screens.run_detail import RunDetailScreen
from bemctl.tui.widgets.verdict_badge import VerdictBadge
from engine.settings import load_settings
from store import jobs, queries
from store.db import Store
from tests.bemctl.tui.helpers import add_job, add_run, set_job, store_path, wait_for

pytestmark = pytest.mark.anyio

SIZE = (150, 40)


def _app() -> BemctlApp:
    return BemctlApp(load_settings())


def _visible_keys(app: BemctlApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, QueueRunsScreen)
    table = screen.table
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


def _text(app: BemctlApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_queue_shows_the_runs_and_screens_switch(filled_project: Path) -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _visible_keys(app) == ["run-1", "run-2"], "both runs")
        row = app.screen.table.get_row("run-2")
        assert [str(c) for c in row[:6]] == ["2", "1", "v1_dynrank", "variant", "0", "succeeded"]
        assert [str(c) for c in row[6:8]] == ["100%", "6/6"]
        assert "jobs: 0 queued, 0 running" in str(app.screen.query_one("StatusLine").render())

        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), "results screen")
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen), "experiments")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen), "help closed")
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueRunsScreen), "queue screen")


async def test_filter_and_sort(filled_project: Path) -> None:
    with Store(store_path(filled_project)) as store:
        add_job(store, "another_exp")  # queued: newest, so first
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(_visible_keys(app)) == 3, "three rows")
        assert _visible_keys(app) == ["job-2", "run-1", "run-2"]

        await pilot.press("slash", *"variant")
        await wait_for(pilot, lambda: _visible_keys(app) == ["run-2"], "only the variant run")
        assert "filter: 'variant'" in _text(app, "#queue-info")
        await pilot.press("enter")  # keep the filter, back to the table
        assert app.focused is app.screen.table
        await pilot.press("slash", "escape")  # clear it
        await wait_for(pilot, lambda: len(_visible_keys(app)) == 3, "filter cleared")

        await pilot.press("s")  # sort by experiment: another_exp < v1_dynrank
        assert "sort: experiment" in _text(app, "#queue-info")
        assert _visible_keys(app) == ["job-2", "run-1", "run-2"]
        await pilot.press("s", "s", "s")  # role, seed, status: queued < succeeded
        assert "sort: status" in _text(app, "#queue-info")
        await pilot.press("s")  # progress: most done is not first, None (queued job) last
        assert "sort: progress" in _text(app, "#queue-info")
        assert _visible_keys(app)[-1] == "job-2"


async def test_open_run_shows_curve_steps_and_events(filled_project: Path) -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _visible_keys(app) == ["run-1", "run-2"], "runs")
        await pilot.press("down", "enter")  # the variant run
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "run detail")
        screen = app.screen
        assert isinstance(screen, RunDetailScreen) and screen.run_id == 2
        await wait_for(pilot, lambda: len(screen.curve) == 6, "the six loss points")
        assert screen.query_one("#run-steps", DataTable).row_count == 6
        events = screen.query_one("#run-events", DataTable)
        kinds = [str(events.get_row_at(i)[1]) for i in range(events.row_count)]
        assert kinds[:2] == ["queued", "claimed"] and kinds[-1] == "succeeded"
        info = _text(app, "#run-info")
        assert "run 2 v1_dynrank · variant · seed 0 · succeeded · step 6/6" in info
        assert not screen.query_one("#run-error").display  # nothing failed
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueRunsScreen), "back to queue")


async def test_failed_run_shows_its_error(fast_project: Path) -> None:
    with Store(store_path(fast_project)) as store:
        exp, job = add_job(store, "broken_exp")
        set_job(store, job, "failed", error="attempt 1: loss became NaN")
        run = add_run(
            store, exp, job, "variant", status="failed", step=3, error="loss is NaN at step 3"
        )
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: f"run-{run}" in _visible_keys(app), "the failed run")
        status = app.screen.table.get_row(f"run-{run}")[5]
        assert str(status) == "failed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "run detail")
        await wait_for(pilot, lambda: app.screen.query_one("#run-error").display, "error box")
        assert "loss is NaN at step 3" in _text(app, "#run-error")


async def test_results_show_the_stored_verdict(filled_project: Path) -> None:
    with Store(store_path(filled_project), readonly=True) as store:
        [(_, comparison, stats, gates, _, _)] = queries.latest_comparisons(store)
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.query(VerdictBadge), "a verdict badge")
        [badge] = app.screen.query(VerdictBadge)
        assert badge.verdict == comparison.verdict
        stats_table, gate_table = app.screen.query("StatsTable"), app.screen.query("GateTable")
        assert stats_table.first().row_count == len(stats)
        assert gate_table.first().row_count == len(gates)
        marks = [str(gate_table.first().get_row_at(i)[0]) for i in range(len(gates))]
        symbol = {"pass": "✓", "fail": "✗", "inconclusive": "?"}
        assert marks == [symbol[g.outcome] for g in gates]


async def test_empty_state_until_a_store_appears(fast_project: Path, cli) -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "no store yet" in _text(app, "#empty"), "empty state")
        assert app.screen.query_one("#empty").display
        assert not app.screen.table.display
        assert cli("queue", "v1_dynrank", "--quick").code == 0
        await wait_for(pilot, lambda: _visible_keys(app) == ["job-1"], "the queued job")
        assert str(app.screen.table.get_row("job-1")[5]) == "queued"


async def test_enqueue_from_experiments_then_cancel_and_retry(filled_project: Path) -> None:
    (filled_project / "experiments" / "zz_broken.yml").write_text("experiment_name: zz_broken\n")
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ExperimentsScreen) and app.screen.entries,
            "spec list",
        )
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        broken = {e.name: e for e in screen.entries or []}["zz_broken"]
        assert broken.status == "invalid" and broken.problems
        cell = str(screen.table.get_row("zz_broken")[4])
        assert broken.problems[0] in cell  # shown inline, under the file name

        screen.table.move_cursor(row=screen.table.get_row_index("mm_mini"))
        await pilot.press("n")  # not implemented: refused here, nothing queued
        await pilot.pause(0.2)
        screen.table.move_cursor(row=screen.table.get_row_index("v1_dynrank"))
        await pilot.press("space", "t")  # select it, full mode
        assert "selected: v1_dynrank" in _text(app, "#experiments-info")
        assert "mode: full" in _text(app, "#experiments-info")
        await pilot.press("n")
        with Store(store_path(filled_project), readonly=True) as store:
            await wait_for(
                pilot, lambda: jobs.active_jobs_named(store, "v1_dynrank"), "job queued", 30
            )
            [queued] = jobs.active_jobs_named(store, "v1_dynrank")
            assert '"quick": false' in queued.options_json
            assert not jobs.active_jobs_named(store, "mm_mini")

            await pilot.press("1")
            await wait_for(pilot, lambda: f"job-{queued.id}" in _visible_keys(app), "job row")
            table = app.screen.table
            assert _visible_keys(app)[0] == f"job-{queued.id}"  # newest first
            assert table.current().key == "run-1"  # the cursor stayed on its row
            table.move_cursor(row=0)
            await pilot.press("r")  # still queued: retry refused
            await pilot.pause(0.2)
            assert [j.id for j in jobs.active_jobs_named(store, "v1_dynrank")] == [queued.id]
            await pilot.press("x")
            await wait_for(
                pilot, lambda: jobs.get_job(store, queued.id).status == "cancelled", "cancel"
            )
            await wait_for(pilot, lambda: f"job-{queued.id}" not in _visible_keys(app), "gone")

            assert table.current().key == "run-1"
            await pilot.press("r")  # the finished template job's run: retried as a new job
            await wait_for(
                pilot, lambda: jobs.active_jobs_named(store, "v1_dynrank"), "retried job", 30
            )
            [retried] = jobs.active_jobs_named(store, "v1_dynrank")
            assert retried.id == queued.id + 1
            assert [e.kind for e in jobs.job_events(store, 1)][-1] == "retried"


async def test_export_writes_markdown_and_html(filled_project: Path) -> None:
    report_dir = filled_project / ".bemctl"
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "store")
        await pilot.press("e")
        await wait_for(pilot, lambda: (report_dir / "report.html").exists(), "html report", 60)
    assert "v1_dynrank" in (report_dir / "report.md").read_text()
    assert "<html" in (report_dir / "report.html").read_text().lower()


async def test_spec_edits_show_up_while_open(fast_project: Path) -> None:
    spec = fast_project / "experiments" / "zz_mine.yml"
    spec.write_text("experiment_name: zz_mine\nbem_config: {}\n")
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen

        def status() -> str | None:
            found = {e.name: e for e in getattr(screen, "entries", None) or []}
            return found["zz_mine"].status if "zz_mine" in found else None

        await wait_for(pilot, lambda: status() == "invalid", "the broken spec")
        good = (fast_project / "experiments" / "v1_dynrank.yml").read_text()
        spec.write_text(good.replace("v1_dynrank", "zz_mine"))
        await wait_for(pilot, lambda: status() == "ok", "the fixed spec")


async def test_mouse_header_click_sorts_and_row_click_opens(filled_project: Path) -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _visible_keys(app) == ["run-1", "run-2"], "runs")
        table = app.screen.table
        x = 0
        for column in table.ordered_columns:
            if column.key.value == "status":
                break
            x += column.get_render_width(table)
        await pilot.click(table, offset=(x + 1, 0))
        # the header-click message is handled asynchronously: wait for it, don't race it
        await wait_for(pilot, lambda: "sort: status" in _text(app, "#queue-info"), "sort")
        await pilot.click(table, offset=(1, 1))  # the highlighted first row
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "run detail")
        assert app.screen.run_id == 1
