"""Routing dynamics: distinct masks/actions, entropy in bits, top share, prompt/generated split;
gate movement; and V1 measured by them (blind chunk 0 vs prompt-routed)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine.evaluation.dynamics import STATIC_SHARE, distribution, gate_movement, routing_dynamics
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.dynrank.model import DynamicRankModel
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel

CPU = torch.device("cpu")


def test_distribution_counts_entropy_and_top_share() -> None:
    summary = distribution(Counter({"a": 6, "b": 2, "c": 2}))
    assert (summary["tokens"], summary["distinct"]) == (10, 3)
    expected = -(0.6 * math.log2(0.6) + 2 * 0.2 * math.log2(0.2))
    assert summary["entropy_bits"] == pytest.approx(expected, rel=1e-12)
    assert summary["top_share"] == 0.6 and summary["static"] is False


def test_one_key_is_static_with_zero_entropy_and_empty_is_undefined() -> None:
    one = distribution(Counter({"a": 5}))
    assert (one["distinct"], one["entropy_bits"], one["top_share"], one["static"]) == (
        1,
        0.0,
        1.0,
        True,
    )
    almost = distribution(Counter({"a": 99, "b": 1}))
    assert almost["top_share"] == STATIC_SHARE and almost["static"] is True  # >= 99%: static
    empty = distribution(Counter())
    assert empty["tokens"] == 0 and empty["top_share"] is None and empty["static"] is None


class _Coded(torch.nn.Module):
    """Routes position t of a sequence to action t // 3 after the prompt, 0 inside it (the
    routing part of the variant contract, `AdapterModel`)."""

    routes = True
    routing_unit = "action"

    def routing_decisions(self, ids: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1])
        codes = torch.where(positions < prompt_lengths[0], 0, 1 + positions // 3)
        return codes[None, :, None]


def test_routing_dynamics_split_prompt_and_generated_tokens() -> None:
    sequences = [(list(range(9)), 3), (list(range(6)), 6)]  # 3 + 6 prompt, 6 + 0 generated
    result = routing_dynamics(_Coded(), sequences, CPU)
    assert result["unit"] == "action" and result["sequences"] == 2
    assert result["prompt"]["tokens"] == 9 and result["prompt"]["distinct"] == 1
    assert result["generated"]["tokens"] == 6
    assert result["generated"]["distinct"] == 2  # positions 3..5 -> 2, 6..8 -> 3
    assert result["all"]["distinct"] == 3 and result["all"]["top_share"] == pytest.approx(9 / 15)
    assert result["static"] is False


def test_models_without_per_position_routing_have_no_dynamics() -> None:
    static = StaticLoraModel(
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=259)),
        LoraConfig(rank_dimension=2),
    )
    assert not static.routes and static.routing_decisions(torch.tensor([[1, 2]])) is None
    assert routing_dynamics(static, [([1, 2], 1)], CPU) is None
    assert routing_dynamics(_Coded(), [], CPU) is None


def test_gate_movement_per_layer_and_group() -> None:
    gates = torch.tensor([[[1.0, 1.5]], [[1.0, 0.5]]])  # 2 rows, 1 layer, 2 groups
    result = gate_movement(gates)
    assert result["n"] == 2 and result["mean_abs_dev"] == [[0.0, 0.5]]
    assert result["overall"] == 0.25 and result["max_abs_dev"] == 0.5
    assert gate_movement(torch.empty(0, 1, 2))["overall"] is None
    with pytest.raises(ValueError):
        gate_movement(torch.ones(2, 2))


def _v1() -> DynamicRankModel:
    torch.manual_seed(0)
    base = GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=259, n_positions=128)
    ).eval()
    model = DynamicRankModel(base, DynamicRankConfig(rank_dimension=4, chunk_size=16))
    with torch.no_grad():
        model.base_model.get_input_embeddings().weight.normal_(0, 1.0)
    return model.eval()


def test_v1_is_static_on_single_chunk_prompts_only_when_routed_blind() -> None:
    """Prompts of 12 tokens in 16-token chunks: routed blind (prompt length 0), every prompt
    token gets the bias mask; routed from the prompt, the masks follow the prompts."""
    model = _v1()
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, 256, (12,), generator=generator).tolist() for _ in range(12)]
    blind = routing_dynamics(model, [(p, 0) for p in prompts], CPU)
    routed = routing_dynamics(model, [(p, 12) for p in prompts], CPU)
    assert blind["all"]["distinct"] == 1 and blind["static"]
    assert routed["prompt"]["distinct"] > 1 and not routed["static"]
    assert routed["prompt"]["entropy_bits"] > 0 and routed["prompt"]["top_share"] < 1
