"""Wall time of `bemctl run v1_dynrank --quick` with a warm base-model cache.

Target (issue 2): at most 90 s on the 2-core CI machine. The base model is pre-trained (or
found in the cache) first and not timed; then the CLI runs in a fresh process, as a user would
run it, so import time counts. Results go to the project's store like any other run.

    .venv/bin/python bench/quick_run.py [--repeat N] [EXPERIMENT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 90.0


def warm_cache() -> float:
    from engine.models.base_model import PretrainPlan, load_base_model
    from engine.settings import load_settings

    settings = load_settings(ROOT / "bemctl.toml")
    p = settings.pretrain
    start = time.perf_counter()
    load_base_model(
        "embedded:tiny-gpt2",
        settings.cache_dir,
        PretrainPlan(p.steps, p.batch_size, p.learning_rate, p.corpus_docs),
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default="v1_dynrank")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    warm_s = warm_cache()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bemctl", "run", args.experiment, "--quick"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
    result = {
        "benchmark": "quick_run",
        "experiment": args.experiment,
        "warm_cache_load_or_pretrain_s": round(warm_s, 2),
        "run_wall_s": [round(t, 2) for t in times],
        "median_s": round(statistics.median(times), 2),
        "target_s": TARGET_S,
        "within_target": statistics.median(times) <= TARGET_S,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
