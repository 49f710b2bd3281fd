"""Shared builders for the variant tests: a tiny GPT-2, the embedded GPT-2, and budget ratios."""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from engine.evaluation.measure import flops_per_token
from engine.models.base_model import embedded_config_dict
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel

VOCAB = 259


def tiny_gpt2(seed: int = 0, n_layer: int = 3) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=n_layer,
        n_embd=32,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=128,
        bos_token_id=257,
        eos_token_id=258,
    )
    return GPT2LMHeadModel(config).eval()


def embedded_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    """The shipped tiny GPT-2 (4 layers, d=128, d_ff=512), randomly initialised."""
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(**embedded_config_dict())).eval()


def random_ids(batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (batch, length), generator=torch.Generator().manual_seed(seed))


def budget_ratios(variant: nn.Module) -> tuple[float, float]:
    """(trainable-parameter ratio, FLOPs-per-token ratio) of `variant` over the static LoRA
    built on the same embedded GPT-2 config, FLOPs counted by FlopCounterMode as the runner
    does (engine.evaluation.measure.flops_per_token)."""
    baseline = StaticLoraModel(embedded_gpt2(), LoraConfig())
    ids = random_ids(4, 32, seed=0)
    mask = torch.ones_like(ids)
    params = variant.parameter_counts()[1] / baseline.parameter_counts()[1]
    flops = flops_per_token(variant, ids, mask) / flops_per_token(baseline, ids, mask)
    return params, flops


def cached_vs_full(model: nn.Module, ids: torch.Tensor, prefill: int, cache: bool = True):
    """(incremental logits, full logits): prefill then one token at a time, as generation does."""
    with torch.no_grad():
        full = model(input_ids=ids).logits
        routing: dict | None = {} if cache else None
        out = model(input_ids=ids[:, :prefill], use_cache=True, routing_cache=routing)
        steps = [out.logits]
        for t in range(prefill, ids.shape[1]):
            out = model(
                input_ids=ids[:, t : t + 1],
                cache=out.cache,
                context_ids=ids[:, :t],
                use_cache=True,
                routing_cache=routing,
            )
            steps.append(out.logits)
    return torch.cat(steps, dim=1), full


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
