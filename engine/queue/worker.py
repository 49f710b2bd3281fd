"""The worker loop: claim a job, run it under a heartbeat, record how it ended, repeat.

`bemctl worker` and `bemctl run` both use it; `run` only restricts it to its own batch
and, on Ctrl-C, cancels that batch instead of handing the job back to the queue.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Literal

from engine.progress import NullProgress, ProgressSink
from engine.queue.control import JobCancelled, JobControl
from engine.queue.execute import finish_batch, run_job_to_json
from engine.settings import Settings
from store import jobs
from store.db import Store
from store.errors import BemctlError
from store.models import Job
from store.states import BatchStatus, JobStatus
from triton_ops import KernelConfigError

JobRunner = Callable[[Settings, Store, Job, JobControl, ProgressSink], str | None]


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        progress: ProgressSink | None = None,
        *,
        batch_id: str | None = None,
        on_interrupt: Literal["release", "cancel"] = "release",
        say: Callable[[str], None] | None = None,
        job_runner: JobRunner = run_job_to_json,
    ) -> None:
        """`job_runner` does the work of one job and returns its outcome JSON (or None);
        tests of the queue protocol pass a small one so that dozens of jobs stay cheap."""
        self.settings = settings
        self.store = store
        self.progress = progress or NullProgress()
        self.batch_id = batch_id
        self.on_interrupt = on_interrupt
        self.identity = jobs.WorkerIdentity.here()
        self.say = say or (lambda message: None)
        self.job_runner = job_runner
        self.finished: list[tuple[int, str, str | None]] = []  # (job id, status, error)

    def drain_batch(self) -> None:
        """Work this worker's batch until its verdicts are written, waiting for jobs of it
        that other workers hold (and taking them over if those workers die)."""
        assert self.batch_id is not None
        said = None
        while True:
            self.run(once=True)
            finish_batch(self.store, self.batch_id)
            status, batch_jobs = jobs.batch_state(self.store, self.batch_id)
            if status != BatchStatus.OPEN:
                return
            held = [j for j in batch_jobs if j.status == JobStatus.RUNNING]
            why = ", ".join(f"job {j.id} on worker {j.worker_id}" for j in held)
            if why and why != said:
                self.say(f"waiting for {why}")
                said = why
            time.sleep(self.settings.worker.poll_s)

    def run(self, *, once: bool = False, max_jobs: int | None = None) -> int:
        """Work until stopped (or, with `once`, until nothing is left); jobs done."""
        done = 0
        waiting_said = None
        w = self.settings.worker
        while max_jobs is None or done < max_jobs:
            job = jobs.claim_next(self.store, self.identity, w.lease_s, batch_id=self.batch_id)
            if job is not None:
                self.execute(job)
                done += 1
                waiting_said = None
                continue
            for ready in jobs.ready_batches(self.store):
                finish_batch(self.store, ready)
            if once:
                why = jobs.pending_work(self.store, w.heartbeat_s, batch_id=self.batch_id)
                if why is None:
                    break
                if why != waiting_said:
                    self.say(f"waiting: {why}")
                    waiting_said = why
            time.sleep(w.poll_s)
        return done

    def execute(self, job: Job) -> str:
        """Run one claimed job to its end; returns its final status."""
        assert job.id is not None
        w = self.settings.worker
        self.say(f"job {job.id}: {job.experiment_name} (attempt {job.attempts})")
        control = JobControl(
            self.store, job.id, self.identity.id, heartbeat_s=w.heartbeat_s, lease_s=w.lease_s
        )
        status, error, result = JobStatus.FAILED, None, None
        try:
            result = self.job_runner(self.settings, self.store, job, control, self.progress)
            status = JobStatus.SUCCEEDED
        except JobCancelled:
            status, error = JobStatus.CANCELLED, "cancelled by user"
        except jobs.LeaseLost as exc:
            self.say(f"job {job.id}: {exc}; dropping it")
            control.close()
            return "lost"
        except KeyboardInterrupt:
            control.close()
            if self.on_interrupt == "release":
                jobs.release_job(self.store, job.id, self.identity.id, "worker stopped")
            else:
                jobs.finish_job(
                    self.store,
                    job.id,
                    self.identity.id,
                    JobStatus.CANCELLED,
                    error="interrupted by user (Ctrl-C)",
                )
            raise
        except (BemctlError, KernelConfigError) as exc:  # one line, no traceback
            error = str(exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.say(f"job {job.id} crashed:\n{traceback.format_exc()}")
        finally:
            control.close()
        if jobs.finish_job(
            self.store, job.id, self.identity.id, status, error=error, outcome_json=result
        ):
            self.finished.append((job.id, status, error))
            self.say(f"job {job.id}: {status}" + (f": {error}" if error else ""))
            finish_batch(self.store, job.batch_id)
        return status
