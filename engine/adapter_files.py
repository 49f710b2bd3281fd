"""An arm's adapter on disk: its content key, saving it atomically, loading and checking it.

The key (`adapter_key`) fingerprints everything that determines a trained adapter, so an
arm trained before under the same key can stand in for a new one (AR0 inside ar1_pg, a
retried job); the file itself is safetensors, which loads tensors and runs no code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from engine.plan import ExperimentPlan
from engine.spec import LoadedSpec

# bump when code changes make older adapters of the same key differ (2: V1 and the router
# route prompt chunks from the prompt at prefill, V1 gains PT1 gates)
ADAPTER_KEY_VERSION = 2


def adapter_key(
    role: str,
    loaded: LoadedSpec,
    plan: ExperimentPlan,
    seed: int,
    pretrain: dict | None = None,
) -> str:
    """Fingerprint of everything that determines an arm's trained adapter: the arm's own
    config (a borrowed baseline's, e.g. AR0 inside ar1_pg, is the same as in ar0_bc), the
    base model (with `pretrain`, the embedded base's pre-training plan, when given: it
    decides the base weights), the data and training specs, the step budget, the seed."""
    spec = loaded.spec
    config = spec.bem_config
    if role == "baseline":
        borrowed = config.baseline_variant_config()
        arm = (
            borrowed.model_dump(mode="json")
            if borrowed is not None
            else {"static_lora_of": config.model_dump(mode="json")}
        )
    else:
        arm = config.model_dump(mode="json")
    payload = {
        "version": ADAPTER_KEY_VERSION,
        "arm": arm,
        "base_model": spec.model.model_dump(mode="json"),
        "data": spec.data.model_dump(mode="json"),
        "training": spec.training.model_dump(mode="json"),
        "plan": [plan.train_size, plan.steps, plan.batch_size],
        "seed": seed,
    }
    if pretrain is not None:
        payload["pretrain"] = pretrain
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_adapter(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def adapter_problem(path: str | None) -> str | None:
    """Why a saved adapter cannot be reused (missing, unreadable), or None."""
    from safetensors import safe_open

    if not path or not Path(path).is_file():
        return f"its adapter file is missing ({path or 'no path recorded'})"
    try:
        with safe_open(path, framework="pt") as fh:
            if not list(fh.keys()):
                return f"its adapter file {path} holds no tensors"
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        return f"its adapter file {path} is unreadable ({type(exc).__name__})"
    return None


def save_adapter(adapter_dir: Path, run_id: int, model: torch.nn.Module) -> Path:
    """Write the arm's trainable weights atomically (a temporary file renamed over the
    target), so a crash never leaves half an adapter that a later reuse would load."""
    from safetensors.torch import save_file

    adapter_dir.mkdir(parents=True, exist_ok=True)
    target = adapter_dir / f"run-{run_id}.safetensors"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=adapter_dir)
    os.close(fd)
    try:
        save_file(model.trainable_state_dict(), tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
