"""A job's current phase as the console shows it: its step of the total, detail, ETA.

Both console views show it: the Queue/Runs table on a running job's line
(`store.console.queue`) and the run detail on the job behind a run (`store.console.run`).
Both read it from the job row's `phase_*` columns (schema 0006), which the worker holding
the job writes as it goes (`store.progress`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PhaseProgress:
    """Where a running job's current phase is: e.g. the base model's pre-training at step
    340 of 2000, "loss 2.410", 50 s in (the job.phase_* columns, schema 0006)."""

    name: str
    step: int | None
    total: int | None
    detail: str | None
    elapsed_s: float | None  # since the phase started

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.total:
            return None
        return min(1.0, self.step / self.total)

    @property
    def eta_s(self) -> float | None:
        """The phase's remaining time, if its steps to come take as long as those done."""
        if self.step is None or self.total is None or self.elapsed_s is None:
            return None
        if self.step <= 0 or self.step >= self.total:
            return None
        return self.elapsed_s * (self.total - self.step) / self.step


def phase_progress(
    name: str | None,
    step: int | None,
    total: int | None,
    detail: str | None,
    started_at: datetime | None,
    now: datetime,
) -> PhaseProgress | None:
    """The job row's phase columns as one value (None when the job has no phase)."""
    if name is None:
        return None
    return PhaseProgress(name, step, total, detail, elapsed_between(started_at, None, now))


def elapsed_between(
    started: datetime | None, finished: datetime | None, now: datetime
) -> float | None:
    """Seconds from `started` to `finished` (or `now`, while still going); None before
    it started."""
    if started is None:
        return None
    return max(0.0, ((finished or now) - started).total_seconds())
