"""The queue across real processes: two workers share 20 jobs; a reader polls while a
writer streams 10,000 metric rows."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from store import jobs, queries
from store.db import Store
from store.models import Batch, Job, Run, StepMetric

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def test_two_workers_drain_twenty_jobs_with_none_run_twice(tmp_path: Path) -> None:
    db, log = tmp_path / "q.db", tmp_path / "ran.log"
    with Store(db) as store:
        experiment = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
        entry = jobs.QueueEntry(experiment.id, "e", "e.yml", "{}")
        batch_id, queued = jobs.enqueue(store, [entry] * 20)
    workers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "tiny_worker.py"), str(db), str(log)], cwd=REPO
        )
        for _ in range(2)
    ]
    for proc in workers:
        assert proc.wait(timeout=120) == 0
    ran = [line.split() for line in log.read_text().splitlines()]
    job_ids = sorted(int(job_id) for job_id, _ in ran)
    assert job_ids == sorted(j.id for j in queued)  # each exactly once
    with Store(db, readonly=True) as store, store.read_session() as session:
        rows = session.exec(select(Job)).all()
        assert {(j.status, j.attempts) for j in rows} == {("succeeded", 1)}
        assert session.get(Batch, batch_id).status == "decided"
        assert jobs.integrity_ok(store)


WRITER = """
import sys
from pathlib import Path
from store import queries
from store.db import Store

with Store(Path(sys.argv[1])) as store:
    e = queries.get_or_create_experiment(store, "e", "{}", "h", "e.yml")
    run = queries.create_run(store, experiment_id=e.id, invocation_id="i", role="baseline",
                             seed=0, quick=True, device="cpu", total_steps=10_000)
    print(run.id, flush=True)
    for start in range(1, 10_001, 10):  # 1,000 commits of 10 rows: a busy trainer
        queries.record_steps(
            store, run.id, [(s, 1.0 / s, 1e-3, s * 0.01) for s in range(start, start + 10)]
        )
"""


def test_reader_polling_at_10_hz_is_never_locked_out(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    Store(db).close()  # schema exists before both sides start
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    run_id = int(writer.stdout.readline())
    polls, seen = 0, []
    errors: list[str] = []
    with Store(db, readonly=True) as reader:
        while writer.poll() is None or polls == 0:
            try:
                with reader.read_session() as session:  # one snapshot for both reads
                    run = session.get(Run, run_id)
                    steps = session.exec(
                        select(func.count()).where(StepMetric.run_id == run_id)
                    ).one()
                seen.append(steps)
                assert run.current_step == steps  # progress and curve move together
            except Exception as exc:  # "database is locked" would land here
                errors.append(repr(exc))
            polls += 1
            time.sleep(0.1)
        assert writer.wait(timeout=120) == 0
        final = len(queries.step_metrics(reader, run_id))
    assert errors == []
    assert final == 10_000
    assert polls >= 3 and seen == sorted(seen)
