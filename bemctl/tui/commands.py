"""What the console's keys change: each write opens its own short-lived write store.

The console's long-lived store is read-only, so nothing it holds can block a worker; a
write here is one transaction, like the matching CLI command (`bemctl queue`, `cancel`,
`retry`, `report`), and the next tick shows its effect. Every function runs on a worker
thread and returns the line to notify; user errors are raised as BemctlError.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bemctl.reports.write import write_report
from engine.settings import Settings
from store.db import Store
from store.errors import BemctlError
from store.states import TERMINAL_JOB_STATUSES


def _write_store(settings: Settings) -> Store:
    return Store(settings.store_path, busy_timeout_s=settings.store_busy_timeout_s)


def enqueue(settings: Settings, names: Sequence[str], quick: bool) -> str:
    """Queue `names` as one batch (one BH family), as `bemctl queue` does."""
    from engine.plan import RunOptions  # torch: only when someone actually enqueues
    from engine.queue.execute import enqueue_experiments

    with _write_store(settings) as store:
        batch_id, queued = enqueue_experiments(store, settings, names, RunOptions(quick=quick))
    jobs = ", ".join(f"{j.id} ({j.experiment_name})" for j in queued)
    mode = "quick" if quick else "full"
    return f"queued job(s) {jobs} in batch {batch_id}, {mode} mode"


def cancel(settings: Settings, job_id: int) -> str:
    """Cancel a queued job now, or flag a running one (its worker stops at the next step);
    then write its batch's verdicts if nothing else of the batch is left to run."""
    from engine.queue.execute import finish_batch
    from store import jobs

    with _write_store(settings) as store:
        job = jobs.get_job(store, job_id)
        if job is None:
            raise BemctlError(f"job {job_id} does not exist")
        effect = jobs.cancel_jobs(store, [job_id], "cancelled from the console")[job_id]
        finish_batch(store, job.batch_id)
    return f"job {job_id} ({job.experiment_name}): {effect}"


def retry(settings: Settings, job_id: int) -> str:
    """Queue a finished job again (same frozen spec and options), as `bemctl retry`."""
    from store import jobs

    with _write_store(settings) as store:
        job = jobs.get_job(store, job_id)
        if job is None:
            raise BemctlError(f"job {job_id} does not exist")
        if job.status not in TERMINAL_JOB_STATUSES:
            raise BemctlError(f"job {job_id} is still {job.status}; cancel it first")
        batch_id, new = jobs.retry_job(store, job_id)
    return f"queued job {new.id} ({new.experiment_name}) in batch {batch_id}, retry of {job_id}"


def export_report(store: Store | None, directory: Path) -> str:
    """Write report.md and report.html (every experiment's newest comparison)."""
    from bemctl.reports.curves import load_curves
    from bemctl.reports.html import render_html  # matplotlib: about a second to import
    from bemctl.reports.markdown import render_markdown
    from bemctl.reports.records import build_records

    if store is None:
        raise BemctlError("nothing to export: no store yet")
    records = build_records(store)
    if not records:
        raise BemctlError("nothing to export: no finished comparisons yet")
    curves = load_curves(store, records)
    md, html = directory / "report.md", directory / "report.html"
    write_report(md, render_markdown(records))
    write_report(html, render_html(records, curves))
    return f"wrote {md} and {html}"
