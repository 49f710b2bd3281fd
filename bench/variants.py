"""Inference latency and FLOP ratios of every implemented variant against its baseline.

Targets (from the architecture document's latency table): V1 <= 1.02, V2 <= 1.06
(pre-generation phase only), V3 <= 1.04, V4 <= 1.01. Each variant and its static-LoRA
baseline are built on the cached embedded base (adapters untrained: cost does not depend on
the adapter's values), then timed interleaved (ABBA rounds after warm-up) on the variant's own
task prompts, prefill + a fixed number of decoded tokens, in this one run.

    .venv/bin/python bench/variants.py [--rounds N] [--tokens N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"v1_dynrank": 1.02, "v2_gateshaping": 1.06, "v3_kron": 1.04, "v4_film": 1.01}


def main() -> int:
    from engine.evaluation.generation import greedy_generate
    from engine.evaluation.measure import flops_per_token, interleaved_latency
    from engine.models.base_model import PretrainPlan, load_base_model
    from engine.settings import load_settings
    from engine.spec import find_spec
    from engine.tasks.registry import build_task
    from engine.training import collate, encode_example
    from engine.variants.build import build_adapter_model
    from engine.variants.registry import get_entry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()
    settings = load_settings(ROOT / "bemctl.toml")
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    p = settings.pretrain
    base = load_base_model(
        "embedded:tiny-gpt2",
        settings.cache_dir,
        PretrainPlan(p.steps, p.batch_size, p.learning_rate, p.corpus_docs),
    )
    device = torch.device("cpu")
    for name, target in TARGETS.items():
        loaded = find_spec(name, settings.experiment_paths)
        cfg = loaded.spec.bem_config
        if get_entry(cfg.variant).builder is None:
            print(json.dumps({"experiment": name, "status": "not implemented yet"}))
            continue
        task = build_task(loaded.spec.data, loaded.resolve, loaded.path)
        _, evals = task.make_splits(8, 16, 0)
        models = [
            build_adapter_model(role, cfg, base.model, 0, loaded.path).eval()
            for role in ("baseline", "variant")
        ]
        probes = [ex.prompt for ex in evals]
        pregen: list[float] = []

        def runner(model, record=False, probes=probes, pregen=pregen):
            def run(r: int) -> None:
                routing: dict = {}
                greedy_generate(
                    model,
                    base.tokenizer,
                    probes[r % len(probes)],
                    args.tokens,
                    device,
                    256,
                    stop_early=False,
                    routing=routing,
                )
                if record and "pregen_ms" in routing:
                    pregen.append(routing["pregen_ms"])

            return run

        lat = interleaved_latency([runner(models[0]), runner(models[1], record=True)], args.rounds)
        a, b = np.array(lat[0].samples_ms), np.array(lat[1].samples_ms)
        batch = collate(
            [encode_example(base.tokenizer, ex.prompt, task.target(ex), 256) for ex in evals[:8]],
            base.tokenizer.pad_token_id,
        )
        flops = [flops_per_token(m, batch["input_ids"], batch["attention_mask"]) for m in models]
        params = [m.parameter_counts()[1] for m in models]
        ratio = float(np.median(b) / np.median(a))
        result = {
            "experiment": name,
            "variant": cfg.variant,
            "latency_p50_ms": [round(float(np.median(a)), 3), round(float(np.median(b)), 3)],
            "latency_ratio_p50": round(ratio, 4),
            "latency_ratio_paired_median": round(float(np.median(b / a)), 4),
            "flop_ratio": round(flops[1] / flops[0], 4),
            "trainable_param_ratio": round(params[1] / params[0], 4),
            "target_latency_ratio": target,
            "rounds": args.rounds,
            "decode_tokens": args.tokens,
        }
        if pregen:
            result["pre_generation_ms_p50"] = round(float(np.median(pregen)), 3)
            result["pre_generation_share_of_variant_p50"] = round(
                float(np.median(pregen)) / float(np.median(b)), 4
            )
        result["target_met"] = ratio <= target
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
