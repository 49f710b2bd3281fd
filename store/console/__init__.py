"""The reads behind `bemctl tui`: small queries that return plain, frozen rows.

The console re-reads the store on a timer from a thread while workers in other processes
write to it, so every function here takes a (read-only) `Store`, does its work inside one
`read_session()` snapshot and returns dataclasses: nothing lazy escapes the session, and
the widgets never touch the ORM.

Two views, one module each: the queue snapshot every tick reads
(`store.console.queue`) and a run's detail (`store.console.run`), both showing a job's
phase progress (`store.console.phase`). Their public names are re-exported here, so
`from store import console; console.refresh_snapshot(...)` keeps working.
"""

from store.console.phase import PhaseProgress, phase_progress
from store.console.queue import QueueRow, Snapshot, queue_rows, refresh_snapshot, row_matches
from store.console.run import EventRow, RunDetail, RunInfo, StepPoint, run_detail

__all__ = [
    "EventRow",
    "PhaseProgress",
    "QueueRow",
    "RunDetail",
    "RunInfo",
    "Snapshot",
    "StepPoint",
    "phase_progress",
    "queue_rows",
    "refresh_snapshot",
    "row_matches",
    "run_detail",
]
