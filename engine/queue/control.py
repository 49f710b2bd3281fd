"""A running job's link to the store: heartbeat, cancel flag, phase, buffered step writes.

The heartbeat runs on its own thread so that the lease stays fresh through long phases
with no natural checkpoint (a memory probe, a big evaluation); the training loop only
reads two flags the thread sets, so checking for a cancel costs nothing per step.

Each phase's progress (step of total, a detail such as the last loss) goes to the job row
for `bemctl list` and the console, at most every `progress_interval_s`: pre-training
advances ~10 times a second, and a write transaction per step would cost more than the
step. The last state of a phase is always written when the phase ends.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from engine.progress import Phase, ProgressSink
from store import jobs
from store.db import Store
from store.recorder import StepWriter  # noqa: F401  (re-exported: the class is the store's)


class JobCancelled(Exception):
    """Someone asked for this job to stop (`bemctl cancel`, the console)."""


class JobControl:
    def __init__(
        self,
        store: Store,
        job_id: int,
        worker_id: str,
        *,
        heartbeat_s: float,
        lease_s: float,
        on_error: Callable[[str], None] | None = None,
        progress_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.worker_id = worker_id
        self.heartbeat_s = heartbeat_s
        self.lease_s = lease_s
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._on_error = on_error or (lambda msg: print(msg, file=sys.stderr))
        self.progress_interval_s = progress_interval_s
        self._clock = clock
        self._progress_at = -float("inf")  # when the phase's progress was last written
        self._unwritten: tuple[int, str | None] | None = None
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-job-{job_id}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if jobs.heartbeat(self.store, self.job_id, self.worker_id, self.lease_s):
                    self._cancel.set()
            except jobs.LeaseLost:
                self._lost.set()
                return
            except Exception as exc:  # a locked store: try again next beat; the lease has slack
                self._on_error(f"job {self.job_id}: heartbeat failed: {exc}")

    def check(self) -> None:
        """Raise if the job must stop: lease lost (someone else owns it) or cancelled."""
        if self._lost.is_set():
            raise jobs.LeaseLost(f"job {self.job_id}: lease lost; another worker took it")
        if self._cancel.is_set():
            raise JobCancelled(f"job {self.job_id}: cancelled by user")

    def phase(self, name: str, run_id: int | None = None, total: int | None = None) -> None:
        """Start a phase: its name, its step total, progress 0 (and an event row)."""
        self.check()
        jobs.set_phase(self.store, self.job_id, self.worker_id, name, run_id, total)
        self._progress_at, self._unwritten = self._clock(), None

    def phase_progress(self, step: int, detail: str | None, *, final: bool = False) -> None:
        """Record where the current phase is, unless the last write was less than
        `progress_interval_s` ago; `final` (the phase ended) always writes what is pending.

        A failed write (a store locked for longer than its busy timeout) is reported, not
        raised: progress is for people watching, and the next step writes it again.
        """
        if final:
            if self._unwritten is None:  # the last step is already in the store
                return
        elif self._clock() - self._progress_at < self.progress_interval_s:
            self._unwritten = (step, detail)
            return
        self._unwritten = None
        self._progress_at = self._clock()
        try:
            jobs.set_phase_progress(self.store, self.job_id, self.worker_id, step, detail)
        except Exception as exc:
            self._unwritten = (step, detail)
            self._on_error(f"job {self.job_id}: phase progress not recorded: {exc}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.heartbeat_s + 5)


class JobProgress:
    """A ProgressSink that also records each phase on the job and checks for cancels."""

    def __init__(self, inner: ProgressSink, control: JobControl) -> None:
        self.inner = inner
        self.control = control

    def phase(self, name: str, total: int) -> Phase:
        self.control.phase(name, total=total)
        return _CheckedPhase(self.inner.phase(name, total), self.control)

    def log(self, message: str) -> None:
        self.inner.log(message)


class _CheckedPhase:
    """Checks for a cancel before each step and records the phase's progress on the job."""

    def __init__(self, inner: Phase, control: JobControl) -> None:
        self.inner = inner
        self.control = control
        self.step = 0
        self.detail: str | None = None

    def advance(self, n: int = 1, info: str = "") -> None:
        self.control.check()
        self.inner.advance(n, info)
        self.step += n
        self.detail = info or self.detail
        self.control.phase_progress(self.step, self.detail)

    def done(self) -> None:
        self.inner.done()
        self.control.phase_progress(self.step, self.detail, final=True)
