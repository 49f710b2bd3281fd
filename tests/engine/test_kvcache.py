"""The KV-cache check finds routing changes of cached positions, and V1 has none: prompt
chunks routed from the prompt at prefill, later chunks from the chunk before them."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine.evaluation.kvcache import kv_cache_check
from engine.models.tokenizer import ByteTokenizer
from engine.variants.dynrank import model as dynrank_model
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.dynrank.model import DynamicRankModel
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel

TOK = ByteTokenizer()
PROMPTS = ["abc: red; xyz: owl\nQ: what is xyz?\nA:", "k: v\nQ: what is k?\nA:"]


def _base() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=2, n_embd=32, n_head=4, vocab_size=259, n_positions=128, initializer_range=0.2
        )
    )


def _v1() -> DynamicRankModel:
    model = DynamicRankModel(_base(), DynamicRankConfig(rank_dimension=4, chunk_size=8))
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.normal_(0, 1.0)  # routing that actually varies with the input
    return model.eval()


def test_chunk_sticky_routing_never_invalidates_the_cache() -> None:
    check = kv_cache_check(_v1(), TOK, PROMPTS, 12, torch.device("cpu"), 128)
    assert check.positions == sum(len(TOK.encode(p)) + 12 for p in PROMPTS)  # all fed ids
    assert check.recomputed == 0 and check.hit_rate == 1.0


def test_routing_from_the_current_chunk_is_caught(monkeypatch) -> None:
    """Route chunk c from chunk c itself: tokens decoded later change earlier decisions."""

    def same_chunk_features(embeddings, chunk_size, prompt_lengths=None):
        b, t, d = embeddings.shape
        n = (t + chunk_size - 1) // chunk_size
        padded = torch.nn.functional.pad(embeddings, (0, 0, 0, n * chunk_size - t))
        return padded.view(b, n, chunk_size, d).mean(2)

    monkeypatch.setattr(dynrank_model, "chunk_features", same_chunk_features)
    check = kv_cache_check(_v1(), TOK, PROMPTS, 12, torch.device("cpu"), 128)
    assert check.recomputed > 0 and check.hit_rate < 1.0


def test_prompt_routing_that_reads_past_the_prompt_is_caught(monkeypatch) -> None:
    """Route every chunk as a prompt chunk of the whole input: the last prompt chunk's
    routing then depends on tokens generated after the prefill routed it."""
    real = dynrank_model.chunk_features

    def everything_is_prompt(embeddings, chunk_size, prompt_lengths=None):
        whole = torch.full((embeddings.shape[0],), embeddings.shape[1])
        return real(embeddings, chunk_size, whole)

    monkeypatch.setattr(dynrank_model, "chunk_features", everything_is_prompt)
    check = kv_cache_check(_v1(), TOK, PROMPTS, 12, torch.device("cpu"), 128)
    assert check.recomputed > 0 and check.hit_rate < 1.0


def test_static_baseline_has_nothing_to_invalidate() -> None:
    model = StaticLoraModel(_base(), LoraConfig(rank_dimension=4)).eval()
    check = kv_cache_check(model, TOK, PROMPTS, 5, torch.device("cpu"), 128)
    assert check.recomputed == 0 and check.positions > 0
