"""KV-cache hit rate: how many cached K/V entries a routing change would have invalidated.

A variant that routes per chunk must not change the routing of tokens already in the KV
cache, or their cached keys/values no longer match what the model would compute now. We
decode with the cache while the variant logs the routing it applied to each position, then
route the finished sequence in one pass (told where its prompt ends, as training is: prompt
chunks are routed from the prompt at prefill); every position whose routing differs is a
cached entry that would have had to be recomputed. Variants without per-position routing (the
static baseline; `AdapterModel.routes` False) have nothing to invalidate: hit rate 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.evaluation.generation import greedy_generate
from engine.models.tokenizer import TextTokenizer

if TYPE_CHECKING:
    from engine.variants.base import AdapterModel


@dataclass(frozen=True)
class KVCacheCheck:
    positions: int
    recomputed: int

    @property
    def hit_rate(self) -> float:
        return 1.0 - self.recomputed / self.positions if self.positions else 1.0


def kv_cache_check(
    model: AdapterModel,
    tokenizer: TextTokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    device: torch.device,
    max_length: int,
) -> KVCacheCheck:
    positions = recomputed = 0
    for prompt in prompts:
        routing: dict = {"trace": []}
        greedy_generate(
            model,
            tokenizer,
            prompt,
            max_new_tokens,
            device,
            max_length,
            stop_early=False,
            routing=routing,
        )
        ids = routing["ids"]
        if not model.routes or not routing["trace"]:
            positions += ids.shape[1] - 1  # the last token is never fed back
            continue
        used = torch.cat(routing["trace"], dim=1)[0]
        prompt = torch.tensor([routing["prompt_length"]], device=ids.device)
        fresh = model.routing_decisions(ids[:, : used.shape[0]], prompt_lengths=prompt)[0]
        changed = (used != fresh).flatten(1).any(dim=1)
        positions += used.shape[0]
        recomputed += int(changed.sum())
    return KVCacheCheck(positions, recomputed)
