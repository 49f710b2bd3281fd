"""Where a run's frozen base model comes from: the embedded tiny GPT-2 or a local HF directory.

The embedded model is built from `embedded_config.json` with transformers and pre-trained
briefly on the synthetic corpus (train split only). Pre-training is deterministic and cached as
safetensors under the store's directory, keyed by a hash of everything that determines the
weights, so all experiments start from the same base and only the first run pays for it.
Nothing here ever downloads: local directories load with `local_files_only=True`. Nothing
here runs a model directory's code or unpickles its files: `trust_remote_code=False` and
`use_safetensors=True` on every load, after `hf_dir.check_base_model` refused `auto_map`,
unknown model types and pickle-only weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.models.hf_dir import EMBEDDED_CONFIG as CONFIG_PATH
from engine.models.hf_dir import (  # noqa: F401 - re-exported: runner, doctor, benches
    EMBEDDED_NAME,
    EMBEDDED_PREFIX,
    check_base_model,
)
from engine.models.tokenizer import ByteTokenizer, HFTokenizerAdapter, TextTokenizer
from store.errors import BemctlError, shorten

CORPUS_VERSION = "mix-v1-qa-translation-json"  # bump when the corpus generator changes meaning


@dataclass(frozen=True)
class PretrainPlan:
    steps: int
    batch_size: int
    learning_rate: float
    corpus_docs: int
    block_size: int = 128
    seed: int = 1234


@dataclass
class BaseModel:
    model: nn.Module
    tokenizer: TextTokenizer
    name: str
    source: str  # "embedded cache <dir>" or the local directory


def embedded_config_dict(overrides: dict | None = None) -> dict:
    config = json.loads(CONFIG_PATH.read_text())
    config.update(overrides or {})
    return config


def cache_key(config: dict, plan: PretrainPlan) -> str:
    payload = json.dumps(
        {
            "config": config,
            "plan": plan.__dict__,
            "corpus": CORPUS_VERSION,
            "tokenizer": "bytes-v1",
            "torch": torch.__version__.split("+")[0],
            # 2: the initial weights are drawn from plan.seed (before, from whatever state the
            # global RNG was in, so the same key could name different bases on two hosts)
            "init": 2,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


ProgressFn = Callable[[int, int, float], None]  # (step, total, loss)


def _quiet_transformers() -> None:
    """transformers' own tqdm bars would interleave with ours; we report progress ourselves."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_base_model(
    name: str,
    cache_dir: Path,
    plan: PretrainPlan,
    *,
    config_overrides: dict | None = None,
    progress: ProgressFn | None = None,
) -> BaseModel:
    """The frozen base for `model.base_model`: embedded (cached pre-train) or a local HF dir."""
    _quiet_transformers()
    check_base_model(name)
    if name.startswith(EMBEDDED_PREFIX):
        return _embedded(cache_dir, plan, config_overrides or {}, progress)
    return load_local_hf(Path(name))


def load_local_hf(directory: Path) -> BaseModel:
    """A model saved with save_pretrained (safetensors); never reaches the network, never
    runs the directory's code (no prompt either: the answer is always no)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_base_model(str(directory))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            directory, local_files_only=True, trust_remote_code=False, use_safetensors=True
        )
        tokenizer = AutoTokenizer.from_pretrained(
            directory, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BemctlError(
            f"model.base_model: {shorten(str(directory))}: cannot load: {shorten(first, 200)}"
        ) from None
    model.eval()
    return BaseModel(model, HFTokenizerAdapter(tokenizer), str(directory), str(directory))


def _embedded(
    cache_dir: Path, plan: PretrainPlan, overrides: dict, progress: ProgressFn | None
) -> BaseModel:
    from transformers import GPT2Config, GPT2LMHeadModel

    config_dict = embedded_config_dict(overrides)
    key = cache_key(config_dict, plan)
    target = cache_dir / f"{EMBEDDED_NAME}-{key}"
    if not (target / "model.safetensors").is_file():
        torch.manual_seed(plan.seed)  # the initial weights are part of what the key names
        model = GPT2LMHeadModel(GPT2Config(**config_dict))
        pretrain(model, ByteTokenizer(), plan, progress)
        _save_atomically(model, target)
    model = GPT2LMHeadModel.from_pretrained(target, local_files_only=True, use_safetensors=True)
    model.eval()
    return BaseModel(model, ByteTokenizer(), f"{EMBEDDED_PREFIX}{EMBEDDED_NAME}", str(target))


def _save_atomically(model: nn.Module, target: Path) -> None:
    """Write into a temp dir and rename, so a crash never leaves a half-written cache entry."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # lost a race only if it's there
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def corpus_blocks(tokenizer: ByteTokenizer, plan: PretrainPlan) -> torch.Tensor:
    """The training-split corpus packed into (n_blocks, block_size) token blocks."""
    from engine.tasks.corpus import pretraining_mix

    ids: list[int] = []
    for doc in pretraining_mix(plan.corpus_docs, plan.seed):
        ids.extend(tokenizer.encode(doc))
        ids.append(tokenizer.eos_token_id)
    n = len(ids) // plan.block_size
    return torch.tensor(ids[: n * plan.block_size]).view(n, plan.block_size)


def pretrain(
    model: nn.Module,
    tokenizer: ByteTokenizer,
    plan: PretrainPlan,
    progress: ProgressFn | None = None,
) -> float:
    """Deterministic next-token pre-training; returns the final loss (cosine LR, AdamW)."""
    torch.manual_seed(plan.seed)
    blocks = corpus_blocks(tokenizer, plan)
    generator = torch.Generator().manual_seed(plan.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate, weight_decay=0.01)
    model.train()
    loss_value = float("nan")
    warmup = max(1, plan.steps // 20)
    for step in range(plan.steps):
        lr = plan.learning_rate * min(1.0, (step + 1) / warmup)
        lr *= 0.5 * (1 + math.cos(math.pi * step / plan.steps)) if step >= warmup else 1.0
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(blocks), (plan.batch_size,), generator=generator)
        batch = blocks[idx]
        logits = model(input_ids=batch).logits
        loss = nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise BemctlError(
                f"base-model pre-training diverged at step {step} (loss {loss_value})"
            )
        if progress is not None:
            progress(step + 1, plan.steps, loss_value)
    model.eval()
    return loss_value
