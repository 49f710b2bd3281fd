"""Store throughput: metric-row ingest (rows/s) and the console's refresh query time.

    .venv/bin/python bench/store.py [--runs 1000] [--steps 1000]

Builds a throw-away store of RUNS runs x STEPS loss-curve rows (1,000,000 by default),
written through `store.queries.record_steps` exactly as the trainer's StepWriter writes
them (one transaction per buffered batch), then times the console's refresh
(`store.console.refresh_snapshot`) and a run-detail read on a read-only connection.
Targets (issue 5): >= 100,000 rows/s ingest; <= 50 ms per refresh.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and this module would
# shadow the `store` package it measures.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from store import console, queries  # noqa: E402
from store.db import Store  # noqa: E402


def _runs(store: Store, n: int, steps: int) -> list[int]:
    e = queries.get_or_create_experiment(store, "bench", "{}", "h", "bench.yml")
    ids = []
    for i in range(n):
        run = queries.create_run(
            store,
            experiment_id=e.id,
            invocation_id="bench",
            role=("baseline", "variant")[i % 2],
            seed=0,
            quick=True,
            device="cpu",
            total_steps=steps,
        )
        ids.append(run.id)
    return ids


def _ingest(store: Store, run_ids: list[int], steps: int, batch: int) -> tuple[int, float]:
    rows = 0
    started = time.perf_counter()
    for run_id in run_ids:
        for start in range(1, steps + 1, batch):
            chunk = [
                (s, 2.0 / s, 1e-3, s * 0.05) for s in range(start, min(start + batch, steps + 1))
            ]
            queries.record_steps(store, run_id, chunk)
            rows += len(chunk)
    return rows, time.perf_counter() - started


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm: page cache and statement cache, as a running console would be
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        with Store(db) as store:
            print("ingest (rows per transaction -> rows/s), on fresh runs:")
            for batch in (1, 10, 50, 200):
                probe = _runs(store, 2, 1000)
                rows, seconds = _ingest(store, probe, 1000, batch)
                print(f"  batch {batch:>4}: {rows / seconds:>10,.0f} rows/s ({rows} rows)")
            ids = _runs(store, args.runs, args.steps)
            rows, seconds = _ingest(store, ids, args.steps, 200)
            print(
                f"bulk fill, batch 200: {rows:,} rows in {seconds:.1f} s = "
                f"{rows / seconds:,.0f} rows/s"
            )
        with Store(db, readonly=True) as reader:
            median, p95 = _time(lambda: console.refresh_snapshot(reader), args.repeats)
            print(
                f"console refresh on {args.runs:,} runs / {rows:,} metric rows: "
                f"median {median:.1f} ms, p95 {p95:.1f} ms (target <= 50 ms)"
            )
            middle = ids[len(ids) // 2]
            median, p95 = _time(lambda: console.run_detail(reader, middle), args.repeats)
            print(f"run detail ({args.steps} steps): median {median:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
