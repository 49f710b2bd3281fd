"""Greedy decoding with KV cache and per-chunk routing cache equals full recomputation."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine.evaluation.generation import greedy_generate
from engine.models.tokenizer import ByteTokenizer
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.dynrank.model import DynamicRankModel

TOK = ByteTokenizer()


def _v1(chunk_size: int) -> DynamicRankModel:
    torch.manual_seed(0)
    base = GPT2LMHeadModel(
        GPT2Config(
            n_layer=2, n_embd=32, n_head=4, vocab_size=259, n_positions=128, initializer_range=0.2
        )
    )
    model = DynamicRankModel(base, DynamicRankConfig(rank_dimension=4, chunk_size=chunk_size))
    with torch.no_grad():
        for layer in model.lora_layers.values():
            layer.lora_u.normal_(0, 0.5)  # make the adapter (and so the routing) matter
    return model.eval()


@torch.no_grad()
def _uncached_greedy(model, prompt: str, max_new: int) -> str:
    ids = TOK.encode(prompt)
    out: list[int] = []
    for _ in range(max_new):
        # told where the prompt ends, as training is: its chunks are routed from it
        logits = model(input_ids=torch.tensor([ids + out]), prompt_lengths=[len(ids)]).logits
        nxt = int(logits[0, -1].argmax())
        if nxt == TOK.eos_token_id:
            break
        out.append(nxt)
        if "\n" in TOK.decode(out[-4:]):
            break
    return TOK.decode(out).split("\n", 1)[0].strip()


def test_cached_generation_matches_full_recompute_across_chunks() -> None:
    model = _v1(chunk_size=4)  # prompt + answer cross many chunk boundaries
    with torch.no_grad():  # gates away from identity
        model.predictor[2].weight[model.n_mask_logits :].normal_(0, 1.0)
    prompt = "abc: red; xyz: owl\nQ: what is xyz?\nA:"
    expected = _uncached_greedy(model, prompt, 20)
    got = greedy_generate(model, TOK, prompt, 20, torch.device("cpu"), max_length=128)
    assert got == expected
    assert len(got) > 0


def test_routing_cache_is_reused_within_a_chunk() -> None:
    model = _v1(chunk_size=64)
    calls = {"n": 0}
    real = model.routing

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    model.routing = counting  # type: ignore[method-assign]
    greedy_generate(model, TOK, "abc: red\nQ: what is abc?\nA:", 8, torch.device("cpu"), 128)
    # prefill computes the masks once; decode steps inside the same chunk reuse them
    assert calls["n"] == 1
