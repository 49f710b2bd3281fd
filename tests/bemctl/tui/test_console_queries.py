"""store.console: the rows the console shows, and that a tick never reads step_metric."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bemctl.reports.records import build_records
from store import console, queries
from store.db import Store
from store.types import utcnow
from tests.bemctl.tui.helpers import add_comparison, add_job, add_run, set_job


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "bemctl.db") as opened:
        yield opened


def test_snapshot_rows_progress_eta_and_counts(store: Store) -> None:
    waiting_exp, waiting = add_job(store, "waiting")
    busy_exp, busy = add_job(store, "busy")
    set_job(store, busy, "running", worker_id="host:1:abc", phase="busy: train baseline")
    baseline = add_run(
        store, busy_exp, busy, "baseline", status="running", step=4, total=10, started_s_ago=20.0
    )
    variant = add_run(store, busy_exp, busy, "variant", status="queued", step=0)

    snap = console.refresh_snapshot(store)

    assert [r.key for r in snap.rows] == [f"run-{baseline}", f"run-{variant}", f"job-{waiting}"]
    running = snap.rows[0]
    assert (running.experiment, running.role, running.status) == ("busy", "baseline", "running")
    assert (running.current_step, running.total_steps, running.progress) == (4, 10, 0.4)
    assert running.last_loss == pytest.approx(4.6)
    assert running.elapsed_s == pytest.approx(20.0, abs=2.0)
    # 4 steps took ~20 s, so the remaining 6 take ~30 s
    assert running.eta_s == pytest.approx(30.0, abs=3.0)
    assert running.phase == "busy: train baseline"
    assert snap.rows[1].eta_s is None and snap.rows[1].phase is None  # not started yet
    queued = snap.rows[2]
    assert (queued.run_id, queued.job_id, queued.status, queued.progress) == (
        None,
        waiting,
        "queued",
        None,
    )
    assert snap.job_counts == {"queued": 1, "running": 1}
    assert snap.workers == ("host:1:abc",)
    assert waiting_exp != busy_exp


def test_claimed_job_without_runs_has_a_row_until_its_runs_exist(store: Store) -> None:
    exp, job = add_job(store, "claimed")
    set_job(store, job, "running", phase="claimed")
    assert [r.key for r in console.queue_rows(store)] == [f"job-{job}"]
    add_run(store, exp, job, "baseline", status="running", step=0)
    assert [r.key for r in console.queue_rows(store)] == ["run-1"]


def test_filter_matches_experiment_status_or_role(store: Store) -> None:
    exp, job = add_job(store, "alpha")
    set_job(store, job, "failed", error="boom")
    add_run(store, exp, job, "baseline", status="failed", step=2, error="boom")
    add_job(store, "beta")
    assert {r.experiment for r in console.queue_rows(store, "ALP")} == {"alpha"}
    assert {r.key for r in console.queue_rows(store, "fail")} == {"run-1"}
    assert {r.key for r in console.queue_rows(store, "baseline")} == {"run-1"}
    assert {r.experiment for r in console.queue_rows(store, "queued")} == {"beta"}
    assert len(console.queue_rows(store, None)) == 2


def test_run_detail_reads_only_new_curve_points(store: Store) -> None:
    exp, job = add_job(store, "curve")
    set_job(store, job, "failed", error="NaN loss")
    run = add_run(store, exp, job, "variant", status="failed", step=8, error="NaN loss at step 8")
    detail = console.run_detail(store, run)
    assert detail is not None
    assert [p.step for p in detail.steps] == list(range(1, 9))
    assert detail.run.error == "NaN loss at step 8"
    assert (detail.run.job_status, detail.run.job_error) == ("failed", "NaN loss")
    assert [e.kind for e in detail.events] == ["queued", "failed"]
    later = console.run_detail(store, run, after_step=6)
    assert later is not None and [p.step for p in later.steps] == [7, 8]
    assert console.run_detail(store, 999) is None


def test_results_newest_comparison_with_stats_gates_and_reasons(store: Store) -> None:
    """The Results screen reads the report record (the one every view reads)."""
    add_comparison(store, "exp_a", "REJECT", -0.01, ["statistical_significance[f1] failed"])
    [record] = build_records(store)
    decision = record["acceptance_decision"]
    assert (record["experiment_id"], decision["overall_verdict"], record["invocation_id"]) == (
        "exp_a",
        "REJECT",
        "batch-fixed",
    )
    sv = record["statistical_validation"]
    assert list(sv["bca_bootstrap"]) == ["exact_match", "f1"]
    ci = sv["bca_bootstrap"]["exact_match"]
    fdr = sv["fdr_correction"]
    adjusted = dict(zip(fdr["metrics"], fdr["adjusted_p_values"], strict=True))
    observed = (
        ci["estimate"],
        ci["lower"],
        ci["upper"],
        sv["paired_tests"]["exact_match"]["p_value"],
        adjusted["exact_match"],
        sv["effect_sizes"]["exact_match"]["cohens_dz"],
    )
    assert observed == pytest.approx((-0.01, -0.03, 0.01, 0.41, 0.41, -0.05))
    assert [(g["gate"], g["passed"]) for g in record["gates"]] == [
        ("budget_parity_params", True),
        ("ci_lower_bound_positive", False),
        ("statistical_significance", False),
    ]
    assert decision["reasons"] == ["statistical_significance[f1] failed"]


def test_refresh_never_touches_step_metric(store: Store) -> None:
    """The tick must stay fast however long the curves grow: no step_metric in its SQL."""
    exp, job = add_job(store, "long")
    set_job(store, job, "running")
    add_run(store, exp, job, "baseline", status="running", step=50, total=100)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        with Store(store.path, readonly=True) as reader:
            statements.clear()
            snap = console.refresh_snapshot(reader)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert snap.rows[0].current_step == 50
    assert statements, "no SQL recorded"
    assert not [s for s in statements if "step_metric" in s]


def test_job_has_its_own_line_with_phase_progress_while_no_run_is_running(store: Store) -> None:
    exp, job = add_job(store, "pretraining")
    set_job(
        store,
        job,
        "running",
        phase="pre-train base model (cached after)",
        phase_step=340,
        phase_total=2000,
        phase_detail="loss 2.410",
        phase_started_at=utcnow() - timedelta(seconds=34),
    )
    base = add_run(store, exp, job, "baseline", status="queued", step=0)
    var = add_run(store, exp, job, "variant", status="queued", step=0)

    rows = {r.key: r for r in console.queue_rows(store)}
    assert set(rows) == {f"job-{job}", f"run-{base}", f"run-{var}"}
    line = rows[f"job-{job}"]
    assert (line.current_step, line.total_steps, line.progress) == (340, 2000, 0.17)
    progress = line.phase_progress
    assert progress is not None
    assert (progress.name, progress.step, progress.total, progress.detail) == (
        "pre-train base model (cached after)",
        340,
        2000,
        "loss 2.410",
    )
    # 340 steps in ~34 s: ~166 s for the other 1660 (plus this test's own delay, scaled)
    assert line.eta_s == progress.eta_s
    assert progress.eta_s is not None and 166 <= progress.eta_s <= 166 + 1660 / 340 * 10
    assert rows[f"run-{base}"].phase_progress is None  # queued runs show no phase

    # the baseline trains: the run's line carries the job's phase, the job's line goes
    queries.update_run(store, base, status="running")
    set_job(store, job, "running", phase="pretraining: train baseline (seed 0)", phase_step=2)
    rows = {r.key: r for r in console.queue_rows(store)}
    assert f"job-{job}" not in rows
    run_phase = rows[f"run-{base}"].phase_progress
    assert run_phase is not None and run_phase.name == "pretraining: train baseline (seed 0)"

    # both trained, the job measures latency: its own line is back
    for run in (base, var):
        queries.update_run(store, run, status="succeeded", finished_at=utcnow())
    set_job(store, job, "running", phase="pretraining: latency", phase_step=1, phase_total=4)
    rows = {r.key: r for r in console.queue_rows(store)}
    assert rows[f"job-{job}"].phase == "pretraining: latency"
    assert rows[f"job-{job}"].total_steps == 4


def test_phase_text_keeps_the_numbers_and_shortens_the_name() -> None:
    from bemctl.tui.format import phase_text

    p = console.PhaseProgress("pre-train base model (cached after)", 340, 2000, "loss 2.410", 34.0)
    assert phase_text(p) == "pre-train base model (cached after) 340/2000 loss 2.410 ETA 2m46s"
    short = phase_text(p, width=40)
    assert len(short) <= 40 and short.endswith("340/2000 loss 2.410 ETA 2m46s")
    assert phase_text(console.PhaseProgress("e: latency", None, None, None, 3.0)) == "e: latency"
    assert phase_text(None) == ""
