"""A worker process whose jobs are tiny (for queue-protocol tests): `python tiny_worker.py DB LOG`.

The claim, lease, heartbeat and finish code is the real one; only the job's work is a
stand-in that logs which process ran which job, so 20 jobs take seconds, not minutes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from engine.queue.worker import Worker
from engine.settings import Settings
from store.db import Store


def main(db: str, log: str) -> None:
    settings = Settings(
        store=Path(db),
        worker={"heartbeat_s": 0.2, "lease_s": 5.0, "poll_s": 0.05, "max_attempts": 3},
    )

    def work(settings, store, job, control, progress):
        control.phase("working")
        with open(log, "a") as fh:  # O_APPEND: one whole line per write
            fh.write(f"{job.id} {os.getpid()}\n")
        time.sleep(0.05)
        control.check()
        return None

    with Store(Path(db), busy_timeout_s=10) as store:
        Worker(settings, store, job_runner=work).run(once=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
