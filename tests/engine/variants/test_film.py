"""V4 residual FiLM: identity at init, clamps, causal prompt features, cached decoding, budget."""

import pytest
import torch
from pydantic import ValidationError

from engine.variants.film.config import ResidualFilmConfig
from engine.variants.film.model import ResidualFilmModel, prefix_means
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel
from store.errors import BemctlError
from tests.engine.variants.helpers import (
    budget_ratios,
    cached_vs_full,
    embedded_gpt2,
    lm_loss,
    random_ids,
    tiny_gpt2,
)
from tests.tolerance import assert_close_scaled


def film_model(seed: int = 0, trained: bool = True, **kwargs) -> ResidualFilmModel:
    model = ResidualFilmModel(tiny_gpt2(seed), ResidualFilmConfig(**kwargs))
    if trained:  # a controller that actually modulates, mostly inside the clamp range
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            model.base_model.get_input_embeddings().weight.normal_(0, 1.0)
            model.controller.up.weight.normal_(0, 0.3)
            model.controller.up.bias.normal_(0, 0.1)
            for layer in model.lora_layers.values():
                layer.lora_u.normal_(0, 0.1)
    return model.eval()


def _block_io(model: ResidualFilmModel, block: int, ids: torch.Tensor):
    """(raw block output, modulated block output) of one forward."""
    seen = {}
    h = model.base_model.transformer.h[block]
    handles = [
        h.register_forward_hook(lambda m, a, o: seen.__setitem__("raw", o.clone()), prepend=True),
        h.register_forward_hook(lambda m, a, o: seen.__setitem__("out", o.clone())),
    ]
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        for handle in handles:
            handle.remove()
    return seen["raw"], seen["out"]


# ---------------------------------------------------------------- identity and clamps


def test_identity_at_init_equals_static_lora() -> None:
    variant = ResidualFilmModel(tiny_gpt2(0), ResidualFilmConfig())
    baseline = StaticLoraModel(tiny_gpt2(0), LoraConfig())
    torch.manual_seed(3)
    with torch.no_grad():
        for name, layer in baseline.lora_layers.items():
            layer.lora_u.normal_(0, 0.2)
            variant.lora_layers[name].lora_u.copy_(layer.lora_u)
            variant.lora_layers[name].lora_v.copy_(layer.lora_v)
        ids = random_ids(3, 11, seed=0)
        torch.testing.assert_close(variant(ids).logits, baseline(ids).logits, atol=0, rtol=0)
        gamma, beta = variant.controller(torch.randn(4, 7, 32))
    assert torch.equal(gamma, torch.ones_like(gamma)) and torch.equal(beta, torch.zeros_like(beta))


@pytest.mark.parametrize("sign, gamma, beta", [(1.0, 2.0, 0.5), (-1.0, 0.5, -0.5)])
def test_huge_controller_outputs_are_clamped(sign: float, gamma: float, beta: float) -> None:
    model = film_model()
    with torch.no_grad():
        model.controller.up.weight.zero_()
        model.controller.up.bias.fill_(sign * 1e6)
    for block in model.config.film_layers:
        raw, out = _block_io(model, block, random_ids(2, 6, seed=1))
        torch.testing.assert_close(out, gamma * raw + beta)


def test_random_huge_controller_keeps_modulation_in_range() -> None:
    model = film_model()
    with torch.no_grad():
        model.controller.up.weight.normal_(0, 1e5)
    ids = random_ids(2, 8, seed=2)
    raw, out = _block_io(model, 1, ids)
    # every channel is γ·h + β with γ ∈ {0.5, 2} and β ∈ {-0.5, 0.5} (saturated)
    candidates = torch.stack([g * raw + b for g in (0.5, 2.0) for b in (-0.5, 0.5)])
    assert ((candidates - out).abs().min(0).values < 1e-5).all()
    assert torch.isfinite(model(input_ids=ids).logits).all()


def test_only_configured_blocks_are_modulated() -> None:
    model = film_model(film_layers=[2])
    ids = random_ids(2, 7, seed=3)
    for block in (0, 1):
        raw, out = _block_io(model, block, ids)
        assert torch.equal(raw, out)
    raw, out = _block_io(model, 2, ids)
    assert (raw - out).abs().max() > 1e-3


def test_base_model_called_directly_is_not_modulated() -> None:
    model = film_model()
    ids = random_ids(1, 5, seed=4)
    with torch.no_grad():
        direct = model.base_model(input_ids=ids).logits
        wrapped = model(input_ids=ids).logits
        again = model.base_model(input_ids=ids).logits
    assert (direct - wrapped).abs().max() > 1e-4
    assert torch.equal(direct, again)  # no state leaks out of a forward


# ---------------------------------------------------------------- prompt features


def test_prefix_means_are_causal_running_means() -> None:
    embed = torch.nn.Embedding(10, 3)
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    feats = prefix_means(embed, ids, None, None)
    with torch.no_grad():
        e = embed(ids)
        for t in range(4):
            torch.testing.assert_close(feats[:, t], e[:, : t + 1].mean(1))
        cache: dict = {}
        first = prefix_means(embed, ids[:, :3], None, cache)
        assert cache["film_count"] == 3
        step = prefix_means(embed, ids[:, 3:], ids[:, :3], cache)
        assert cache["film_count"] == 4
    torch.testing.assert_close(torch.cat([first, step], 1), feats)


def test_modulation_ignores_later_tokens() -> None:
    """Causality: editing tokens t.. changes nothing before t (no answer leaks into the prompt)."""
    model = film_model()
    ids = random_ids(2, 10, seed=5)
    edited = ids.clone()
    edited[:, 6:] = random_ids(2, 4, seed=6)
    with torch.no_grad():
        a, b = model(input_ids=ids).logits, model(input_ids=edited).logits
    assert_close_scaled(a[:, :6], b[:, :6])
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-3


def test_prompt_conditions_the_modulation() -> None:
    model = film_model()
    raw_a, out_a = _block_io(model, 1, random_ids(1, 6, seed=7))
    raw_b, out_b = _block_io(model, 1, random_ids(1, 6, seed=8))
    # a different prompt gives a different γ, β: (out - raw) differs beyond what raw explains
    assert not torch.allclose(out_a - raw_a, out_b - raw_b, atol=1e-3)


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("prefill", [1, 3, 7])
@pytest.mark.parametrize("cache", [True, False])
def test_cached_generation_matches_full_forward(prefill: int, cache: bool) -> None:
    model = film_model()
    incremental, full = cached_vs_full(model, random_ids(2, 13, seed=9), prefill, cache=cache)
    assert incremental.shape == full.shape
    assert_close_scaled(incremental, full)


def test_decode_steps_reuse_the_cached_prompt_pool() -> None:
    model = film_model()
    ids = random_ids(1, 9, seed=10)
    calls = []
    embed = model.base_model.get_input_embeddings()
    handle = embed.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[1]))
    try:
        cached_vs_full(model, ids, prefill=5, cache=True)
    finally:
        handle.remove()
    # full forward: 9 (controller) + 9 (model); prefill: 5 + 5; each decode step: 1 + 1
    assert calls == [9, 9, 5, 5] + [1, 1] * 4


# ---------------------------------------------------------------- training and budget


def test_gradients_reach_every_trainable_parameter_and_never_the_base() -> None:
    model = film_model()
    with torch.no_grad():
        model.controller.up.bias.zero_()  # stay inside the clamp range: gradients flow
        model.controller.up.weight.mul_(0.1)
    model.train()
    ids = random_ids(2, 10, seed=11)
    lm_loss(model(input_ids=ids).logits, ids).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert {f"controller.{n}" for n, _ in model.controller.named_parameters()} <= set(trainable)
    for name, p in trainable.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_after_optimizer_step_is_a_no_op() -> None:
    model = film_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.after_optimizer_step()
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_budget_within_five_percent_of_static_lora_on_embedded_dims() -> None:
    variant = ResidualFilmModel(embedded_gpt2(), ResidualFilmConfig())
    params, flops = budget_ratios(variant)
    # controller: 128·4 + 4 + 4·(2 layers · 2 · 128) + 2 · 2 · 128 = 3,076 over 65,536
    assert params == pytest.approx(1 + 3076 / 65536)
    assert abs(params - 1) <= 0.05, params
    assert abs(flops - 1) <= 0.05, flops


def test_film_layers_beyond_the_model_are_a_user_error() -> None:
    with pytest.raises(BemctlError, match="film_layers"):
        ResidualFilmModel(tiny_gpt2(), ResidualFilmConfig(film_layers=[1, 3]))


def test_config_defaults_and_validation() -> None:
    cfg = ResidualFilmConfig()
    assert cfg.variant == "residual_film" and cfg.film_layers == [1, 2]
    assert cfg.gamma_range == (0.5, 2.0) and cfg.beta_range == (-0.5, 0.5)
    assert cfg.controller_rank == 4
    for bad in (
        {"gamma_range": (1.5, 2.0)},
        {"beta_range": (0.1, 0.5)},
        {"film_layers": []},
        {"film_layers": [1, 1]},
        {"film_layers": [-1]},
        {"controller_rank": 0},
    ):
        with pytest.raises(ValidationError):
            ResidualFilmConfig(**bad)
