"""Inference cost of the agentic router (AR0/AR1) against its static rank-K·r LoRA baseline.

The router (`experiments/ar0_bc.yml`'s bem_config: AR0 and AR1 are the same model class at
inference) and the static LoRA of rank K·r are built on the cached embedded base, then timed
in this one run, interleaved (ABBA rounds after warm-up), on the synthetic_mixed task's
prompts:

- end to end: prefill + `--tokens` decoded tokens through `greedy_generate(...,
  stop_early=False)`, exactly the runner's latency probe: p50/p95 per arm, router/baseline;
- split: the prefill forward alone and the decode loop alone (same calls, timed
  separately), so one sees whether the overhead is per prompt or per decoded token.

The plan decides the cost (each distinct action a sequence uses is one more mask per layer,
each chunk boundary crossed while decoding one more planning step and V fold), so
`--store PATH` loads the newest finished `ar1_pg` variant run (else `ar0_bc`) from that
store and times the trained policy's plans; without it the policy is untrained, and the
output says so. Also printed: FLOPs per token (router/baseline) and the architecture
document's mark for AR1 (latency table: +12%, ratio <= 1.12) as PASS/FAIL; the exit code
is 0 either way (a measurement, not a test). CPU only: no GPU is needed or used. torch runs
with one intra-op thread (tiny model: more threads add noise, not speed) unless `--threads`.

    .venv/bin/python bench/router.py [--rounds N] [--tokens N] [--threads N]
                                     [--store .bemctl/bemctl.db]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

# Run as a script, this file's directory comes first on sys.path: keep it from shadowing
# packages, and make the repository importable without an install.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = _HERE.parent
EXPERIMENT = "ar0_bc"  # the router's config and task (AR1's inference model is the same class)
TRAINED_FROM = ("ar1_pg", "ar0_bc")  # whose trained adapter --store loads, first found wins
AR1_MARK = 1.12  # architecture document, latency table, AR1 row: +12%
DEVICE = torch.device("cpu")


class TrainedRun(NamedTuple):
    """A finished router run whose saved adapter (`trainable_state_dict`) can be loaded."""

    experiment: str
    run_id: int
    adapter_path: str
    quick: bool


def find_trained_run(store_path: Path) -> TrainedRun | None:
    """The newest succeeded variant run with a saved adapter file, of the first experiment
    in `TRAINED_FROM` that has one; None when the store holds none.

    Plain SQL over a read-only SQLite connection rather than `store.db.Store`: Store refuses
    a database whose schema revision differs from this checkout's head (it would have to
    migrate it), while this query only needs columns every revision has, and a benchmark
    must never migrate, lock or write the store it reads.
    """
    if not store_path.is_file():
        raise FileNotFoundError("no store file there")
    uri = "file:" + quote(str(store_path.resolve())) + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        for name in TRAINED_FROM:
            rows = db.execute(
                "SELECT run.id, run.adapter_path, run.quick FROM run"
                " JOIN experiment ON experiment.id = run.experiment_id"
                " WHERE experiment.name = ? AND run.role = 'variant'"
                " AND run.status = 'succeeded' AND run.adapter_path IS NOT NULL"
                " ORDER BY run.id DESC",
                (name,),
            ).fetchall()
            for run_id, adapter_path, quick in rows:
                if Path(adapter_path).is_file():
                    return TrainedRun(name, int(run_id), adapter_path, bool(quick))
    return None


def _ms(seconds: float) -> float:
    return 1000.0 * seconds


def _split_runner(
    model: nn.Module,
    prompts: Sequence[torch.Tensor],
    tokens: int,
    prefill_ms: list[float],
    decode_ms: list[float],
    plans: list | None = None,
) -> Callable[[int], None]:
    """Prefill and decode loop of `greedy_generate` (stop_early=False), timed separately."""

    @torch.no_grad()
    def run(r: int) -> None:
        ids = prompts[r % len(prompts)]
        routing: dict = {}
        start = time.perf_counter()
        lengths = torch.tensor([ids.shape[1]], device=ids.device)  # the prefill is the prompt
        out = model(input_ids=ids, use_cache=True, routing_cache=routing, prompt_lengths=lengths)
        prefilled = time.perf_counter()
        past, context = out.cache, ids
        for _ in range(tokens):
            step = torch.tensor([[int(out.logits[0, -1].argmax())]], device=ids.device)
            out = model(
                input_ids=step,
                cache=past,
                context_ids=context,
                use_cache=True,
                routing_cache=routing,
            )
            past = out.cache
            context = torch.cat([context, step], dim=1)
        done = time.perf_counter()
        prefill_ms.append(_ms(prefilled - start))
        decode_ms.append(_ms(done - prefilled))
        if plans is not None and r < len(prompts) and "plans" in routing:
            plans.append(routing["plans"][0])

    return run


def _setting(action) -> tuple[int, int, int]:
    return action.expert, action.rank_budget, action.bias_scale


def _ratios(a: list[float], b: list[float]) -> dict[str, float | list[float]]:
    """p50/p95 of each arm (baseline a, router b) and the router/baseline ratios."""
    x, y = np.asarray(a), np.asarray(b)
    return {
        "p50_ms": [round(float(np.median(x)), 3), round(float(np.median(y)), 3)],
        "p95_ms": [round(float(np.percentile(x, 95)), 3), round(float(np.percentile(y, 95)), 3)],
        "ratio_p50": round(float(np.median(y) / np.median(x)), 4),
        "ratio_p95": round(float(np.percentile(y, 95) / np.percentile(x, 95)), 4),
        "ratio_paired_median": round(float(np.median(y / x)), 4),
    }


def measure(
    baseline: nn.Module,
    router: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    rounds: int,
    tokens: int,
    max_length: int,
    chunk_size: int,
) -> dict:
    """Interleaved timings of both arms (index 0 baseline, 1 router) and the router's plans."""
    from engine.evaluation.generation import greedy_generate
    from engine.evaluation.measure import interleaved_latency

    def generate(model: nn.Module) -> Callable[[int], None]:
        def run(r: int) -> None:
            greedy_generate(
                model,
                tokenizer,
                prompts[r % len(prompts)],
                tokens,
                DEVICE,
                max_length,
                stop_early=False,
                routing={},
            )

        return run

    full = interleaved_latency([generate(baseline), generate(router)], rounds)
    room = max(1, max_length - tokens)  # as greedy_generate truncates the prompt
    encoded = [torch.tensor([tokenizer.encode(p)[-room:]], device=DEVICE) for p in prompts]
    prefill: list[list[float]] = [[], []]
    decode: list[list[float]] = [[], []]
    plans: list = []
    runners = [
        _split_runner(baseline, encoded, tokens, prefill[0], decode[0]),
        _split_runner(router, encoded, tokens, prefill[1], decode[1], plans),
    ]
    interleaved_latency(runners, rounds, warmup=0)
    lengths = [int(ids.shape[1]) for ids in encoded]
    crossings = [(n + tokens - 1) // chunk_size - (n - 1) // chunk_size for n in lengths]
    per_step = [[ms / tokens for ms in arm] for arm in decode]
    return {
        "prefill_plus_decode": _ratios(full[0].samples_ms, full[1].samples_ms),
        "prefill_only": _ratios(*prefill),
        "decode_loop": _ratios(*decode),
        "decode_step_p50_ms": [round(float(np.median(arm)), 4) for arm in per_step],
        "plans": {
            "sequences": len(plans),
            "prompt_tokens_mean": round(float(np.mean(lengths)), 1),
            "chunks_per_sequence_mean": round(
                float(np.mean([len(p.chunk_actions) for p in plans])) if plans else 0.0, 2
            ),
            "distinct_actions_mean": round(
                float(np.mean([len(set(p.chunk_actions)) for p in plans])) if plans else 0.0, 2
            ),
            "distinct_settings_mean": round(  # (expert, rank, bias): what a mask depends on
                float(np.mean([len({_setting(a) for a in p.chunk_actions}) for p in plans]))
                if plans
                else 0.0,
                2,
            ),
            "plan_length_mean": round(
                float(np.mean([p.plan_length for p in plans])) if plans else 0.0, 2
            ),
            "decode_chunk_boundaries_per_sequence_mean": round(float(np.mean(crossings)), 2),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    from engine.evaluation.measure import flops_per_token
    from engine.models.base_model import PretrainPlan, load_base_model
    from engine.settings import load_settings
    from engine.spec import find_spec
    from engine.tasks.registry import build_task
    from engine.training import collate, encode_example
    from engine.variants.build import build_adapter_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    parser.add_argument("--store", type=Path, default=None, help="time this store's trained run")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.tokens < 1:
        parser.error("--rounds and --tokens must be >= 1")
    threads = args.threads or 1
    torch.set_num_threads(threads)
    found: TrainedRun | None = None
    policy = "untrained (no --store given: plans of an untrained policy are timed)"
    if args.store is not None:  # before the (possibly slow) base-model load: fail fast
        try:
            found = find_trained_run(args.store)
        except (OSError, sqlite3.Error) as exc:
            print(f"bench/router.py: --store {args.store}: {exc}", file=sys.stderr)
            return 2
        if found is None:
            names = " or ".join(TRAINED_FROM)
            policy = f"untrained (no finished {names} variant run in {args.store})"
    settings = load_settings(ROOT / "bemctl.toml")
    p = settings.pretrain
    base = load_base_model(
        "embedded:tiny-gpt2",
        settings.cache_dir,
        PretrainPlan(p.steps, p.batch_size, p.learning_rate, p.corpus_docs),
    )
    loaded = find_spec(EXPERIMENT, settings.experiment_paths)
    cfg = loaded.spec.bem_config
    task = build_task(loaded.spec.data, loaded.resolve, loaded.path)
    _, evals = task.make_splits(8, 16, 0)
    baseline, router = (
        build_adapter_model(role, cfg, base.model, 0, loaded.path).eval()
        for role in ("baseline", "variant")
    )
    if found is not None:
        from safetensors.torch import load_file

        router.load_trainable_state_dict(load_file(found.adapter_path))
        quick = " --quick" if found.quick else ""
        policy = f"trained: {found.experiment} run {found.run_id}{quick} ({found.adapter_path})"
    print(
        json.dumps(
            {
                "bench": "router",
                "experiment_config": EXPERIMENT,
                "policy": policy,
                "torch_threads": threads,
                "threads_note": "given by --threads"
                if args.threads
                else "pinned to 1 (--threads N to change)",
                "device": "cpu",
                "note": "ratios are interleaved within this run; absolute ms move with load",
            }
        ),
        flush=True,
    )
    timings = measure(
        baseline,
        router,
        base.tokenizer,
        [ex.prompt for ex in evals],
        args.rounds,
        args.tokens,
        loaded.spec.model.max_length,
        cfg.chunk_size,
    )
    batch = collate(
        [encode_example(base.tokenizer, ex.prompt, task.target(ex), 256) for ex in evals[:8]],
        base.tokenizer.pad_token_id,
    )
    flops = [
        flops_per_token(m, batch["input_ids"], batch["attention_mask"]) for m in (baseline, router)
    ]
    ratio = timings["prefill_plus_decode"]["ratio_p50"]
    result = {
        "variant": cfg.variant,
        "arms": ["baseline (static LoRA rank K·r)", "router"],
        **timings,
        "flop_ratio": round(flops[1] / flops[0], 4),
        "trainable_param_ratio": round(
            router.parameter_counts()[1] / baseline.parameter_counts()[1], 4
        ),
        "rounds": args.rounds,
        "decode_tokens": args.tokens,
        "ar1_mark_latency_ratio": AR1_MARK,
        "ar1_mark_met": ratio <= AR1_MARK,
    }
    print(json.dumps(result), flush=True)
    verdict = "PASS" if ratio <= AR1_MARK else "FAIL"
    print(
        f"AR1 mark (architecture document, latency table: +12%): router/baseline p50 "
        f"{ratio:.3f} vs <= {AR1_MARK:.2f}: {verdict} "
        f"(prefill alone {timings['prefill_only']['ratio_p50']:.3f}, "
        f"per decode step {timings['decode_loop']['ratio_p50']:.3f})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
