"""Peak memory of one trained arm, measured in a fresh process.

Why a child process: baseline and variant are evaluated in one parent process, where the
second arm's measurement would include whatever the first left allocated (the OS high-water
mark of RSS cannot be reset, and on CUDA both models sit on the device). A fresh process per
arm loads the frozen base, rebuilds the arm exactly as trained (engine.variants.build), loads
its saved adapter and generates on the eval prompts, so the two peaks are comparable.

    python -m engine.evaluation.memprobe REQUEST.json   -> prints one JSON MemoryReading
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bemctl.errors import BemctlError
from engine.evaluation.measure import MemoryReading


def probe_memory(requests: list[dict], cwd: Path, timeout_s: float = 600.0) -> list[MemoryReading]:
    """Run one child per request (see `_child`), one after the other; return their readings.

    Sequential on purpose: two children side by side each start torch's intra-op thread
    pool on the same cores, and oversubscribed OpenMP threads made the probes 5-10x slower.
    """
    return [_run_child(request, cwd, timeout_s) for request in requests]


def _run_child(request: dict, cwd: Path, timeout_s: float) -> MemoryReading:
    fd, path = tempfile.mkstemp(prefix="bemctl-memprobe-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(request, fh)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "engine.evaluation.memprobe", path],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BemctlError(f"memory probe for {request['role']} failed: {last}", exit_code=1)
    return MemoryReading(**json.loads(proc.stdout.strip().splitlines()[-1]))


def _child(request: dict) -> MemoryReading:
    import torch
    from safetensors.torch import load_file

    from bemctl.settings import load_settings
    from engine.evaluation.generation import greedy_generate
    from engine.evaluation.measure import PeakMemory
    from engine.models.base_model import PretrainPlan, load_base_model
    from engine.spec import load_spec
    from engine.variants.build import build_adapter_model
    from triton_ops import configure as configure_kernels

    settings = load_settings(Path(request["config"]) if request.get("config") else None)
    configure_kernels(settings.kernels)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    loaded = load_spec(Path(request["spec"]))
    # the job's frozen pre-training plan (the base its arms were trained on), else the toml's
    p = request.get("pretrain") or settings.pretrain.model_dump()
    base = load_base_model(
        loaded.spec.model.base_model,
        settings.cache_dir,
        PretrainPlan(p["steps"], p["batch_size"], p["learning_rate"], p["corpus_docs"]),
    )
    device = torch.device(request["device"])
    model = build_adapter_model(
        request["role"], loaded.spec.bem_config, base.model, request["seed"], loaded.path
    )
    model.load_trainable_state_dict(load_file(request["adapter"]))
    model.to(device).eval()
    with PeakMemory(device) as mem:
        for prompt in request["prompts"]:
            greedy_generate(
                model,
                base.tokenizer,
                prompt,
                request["max_new_tokens"],
                device,
                request["max_length"],
            )
    return mem.reading


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    reading = _child(request)
    print(json.dumps(asdict(reading)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
