"""V3 Kronecker @ W_down: factor shapes, injection, spectral clamp, gradients, budget parity."""

import pytest
import torch
from pydantic import ValidationError

from engine.variants.base import LoraLayer
from engine.variants.kron.config import KroneckerConfig
from engine.variants.kron.model import (
    KroneckerLayer,
    KroneckerModel,
    factorization,
    kron_factor_shapes,
)
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


def kron_model(seed: int = 0, trained: bool = True, **kwargs) -> KroneckerModel:
    model = KroneckerModel(tiny_gpt2(seed), KroneckerConfig(**kwargs))
    if trained:  # non-zero A and U so every factor matters to the output and its gradients
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            for layer in model.kron_layers.values():
                layer.kron_a.normal_(0, 0.5)
            for layer in model.lora_layers.values():
                layer.lora_u.normal_(0, 0.1)
    return model.eval()


# ---------------------------------------------------------------- factor shapes


@pytest.mark.parametrize(
    "dimension, expected",
    [(512, (16, 32)), (128, (8, 16)), (384, (16, 24)), (97, (1, 97)), (13, (1, 13)),
     (1, (1, 1)), (12, (3, 4)), (36, (6, 6)), (3072, (48, 64))],
)  # fmt: skip
def test_factorization_picks_divisors_nearest_the_square_root(dimension, expected) -> None:
    m, n = factorization(dimension)
    assert (m, n) == expected
    assert m * n == dimension and m <= n
    # no divisor pair is closer to √dimension (closest pair = smallest sum)
    pairs = [(d, dimension // d) for d in range(1, dimension + 1) if dimension % d == 0]
    assert m + n == min(a + b for a, b in pairs)


def test_factorization_with_an_explicit_factor_as_lokr() -> None:
    assert factorization(512, 4) == (4, 128)
    assert factorization(512, 5) == (4, 128)  # 5 does not divide: largest divisor <= 5
    assert factorization(12, 6) == (2, 6)
    with pytest.raises(ValueError):
        factorization(0)


@pytest.mark.parametrize(
    "in_features, out_features, a_shape, b_shape",
    [
        (512, 128, (8, 16), (16, 32)),  # GPT-2 embedded mlp.c_proj (Conv1D in=512, out=128)
        (384, 128, (8, 16), (16, 24)),
        (128, 512, (16, 8), (32, 16)),
        (97, 13, (1, 1), (13, 97)),  # both prime: the term degenerates to a scaled dense B
        (3072, 768, (24, 48), (32, 64)),
    ],
)
def test_kron_factor_shapes_cover_the_layer(in_features, out_features, a_shape, b_shape) -> None:
    a, b = kron_factor_shapes(in_features, out_features)
    assert (a, b) == (a_shape, b_shape)
    assert torch.kron(torch.zeros(a), torch.zeros(b)).shape == (out_features, in_features)


# ---------------------------------------------------------------- layer and injection


def test_only_mlp_down_projections_get_a_kronecker_delta_and_lora_is_kept() -> None:
    model = kron_model(trained=False)
    assert sorted(model.kron_layers) == [f"transformer.h.{i}.mlp.c_proj" for i in range(3)]
    for name, layer in model.kron_layers.items():
        assert model.base_model.get_submodule(name) is layer
        assert isinstance(layer.base_layer, LoraLayer)  # the static LoRA stays underneath
        assert layer.kron_a.shape == (1, 4, 8) and layer.kron_b.shape == (1, 8, 16)  # 128->32
    assert len(model.lora_layers) == 3 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    assert isinstance(model.base_model.transformer.h[0].attn.c_proj, LoraLayer)


def test_layer_output_is_base_plus_explicit_kron_delta() -> None:
    model = kron_model(kron_rank=3)
    layer = model.kron_layers["transformer.h.1.mlp.c_proj"]
    x = torch.randn(2, 5, layer.in_features, generator=torch.Generator().manual_seed(0))
    delta = sum(torch.kron(a, b) for a, b in zip(layer.kron_a, layer.kron_b, strict=True))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer.base_layer(x) + x @ delta.t())
        # delta_weights() reports LoRA + Kronecker in the (in, out) layout
        lora = model.lora_layers["transformer.h.1.mlp.c_proj"].delta_weight()
        torch.testing.assert_close(
            model.delta_weights()["transformer.h.1.mlp.c_proj"], lora + delta.t()
        )


def test_zero_init_equals_static_lora() -> None:
    variant = KroneckerModel(tiny_gpt2(0), KroneckerConfig())
    baseline = StaticLoraModel(tiny_gpt2(0), LoraConfig())
    torch.manual_seed(5)
    with torch.no_grad():  # same non-trivial LoRA in both
        for name, layer in baseline.lora_layers.items():
            layer.lora_u.normal_(0, 0.2)
            variant.lora_layers[name].lora_u.copy_(layer.lora_u)
            variant.lora_layers[name].lora_v.copy_(layer.lora_v)
        ids = random_ids(2, 9, seed=1)
        torch.testing.assert_close(variant(ids).logits, baseline(ids).logits, atol=0, rtol=0)


def test_targets_that_match_nothing_are_a_user_error() -> None:
    with pytest.raises(BemctlError, match="kron_targets"):
        KroneckerModel(tiny_gpt2(), KroneckerConfig(kron_targets=["mlp.down_proj"]))


def test_kron_on_a_projection_without_lora() -> None:
    model = KroneckerModel(tiny_gpt2(), KroneckerConfig(target_modules=["c_attn"]))
    layer = model.kron_layers["transformer.h.0.mlp.c_proj"]
    assert type(layer.base_layer).__name__ == "Conv1D"
    assert (layer.in_features, layer.out_features) == (128, 32)


# ---------------------------------------------------------------- training signal


def test_gradients_reach_every_trainable_parameter_and_never_the_base() -> None:
    model = kron_model(kron_rank=2)
    model.train()
    ids = random_ids(2, 10, seed=2)
    lm_loss(model(input_ids=ids).logits, ids).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("kron_a") for n in trainable) and any(
        n.endswith("kron_b") for n in trainable
    )
    for name, p in trainable.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    frozen = {id(p) for p in model.base_model.parameters() if not p.requires_grad}
    assert frozen and not frozen & {id(p) for p in trainable.values()}


def test_trainable_parameters_are_lora_plus_kron_factors() -> None:
    model = kron_model(trained=False, kron_rank=2)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.endswith(("lora_u", "lora_v", "kron_a", "kron_b")) for n in names)
    kron = sum(p.numel() for n, p in model.named_parameters() if "kron_" in n)
    assert kron == 3 * 2 * (4 * 8 + 8 * 16)


# ---------------------------------------------------------------- spectral clamp


def _products(layer: KroneckerLayer) -> torch.Tensor:
    norm_a = torch.linalg.matrix_norm(layer.kron_a.double(), ord=2)
    return norm_a * torch.linalg.matrix_norm(layer.kron_b.double(), ord=2)


def test_spectral_clamp_after_a_large_step() -> None:
    model = kron_model(kron_rank=3, spectral_budget=0.7)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=50.0)  # a step that blows the factors up
    ids = random_ids(2, 10, seed=3)
    lm_loss(model(input_ids=ids).logits, ids).backward()
    optimizer.step()
    assert max(_products(layer).max() for layer in model.kron_layers.values()) > 0.7
    model.after_optimizer_step()
    for layer in model.kron_layers.values():
        products = _products(layer)
        assert (products <= 0.7 + 1e-3).all(), products
        torch.testing.assert_close(products, torch.full_like(products, 0.7), rtol=1e-4, atol=0)


def test_spectral_clamp_rescales_only_terms_over_budget() -> None:
    model = kron_model(kron_rank=3, trained=False, spectral_budget=1.0)
    layer = model.kron_layers["transformer.h.0.mlp.c_proj"]
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        layer.kron_a.copy_(torch.randn(layer.kron_a.shape, generator=g))
        layer.kron_b.copy_(torch.randn(layer.kron_b.shape, generator=g))
        layer.kron_a[1] *= 1e-3 / float(_products(layer)[1])  # term 1 well within budget
    before_a, before_b = layer.kron_a.detach().clone(), layer.kron_b.detach().clone()
    before = _products(layer)
    assert before[0] > 1 and before[2] > 1 and before[1] < 1
    model.after_optimizer_step()
    after = _products(layer)
    assert torch.equal(layer.kron_a[1], before_a[1]) and torch.equal(layer.kron_b[1], before_b[1])
    assert (after <= 1.0 + 1e-3).all()
    for i in (0, 2):  # both factors shrunk by the same factor: directions kept, A/B balance kept
        scale = (1.0 / before[i]).sqrt().float()
        torch.testing.assert_close(layer.kron_a[i], before_a[i] * scale)
        torch.testing.assert_close(layer.kron_b[i], before_b[i] * scale)
    # untouched layers: everything is within budget after the first clamp, so a second is a no-op
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters() if "kron_" in n}
    model.after_optimizer_step()
    assert all(torch.equal(p, snapshot[n]) for n, p in model.named_parameters() if "kron_" in n)


# ---------------------------------------------------------------- generation and budget


@pytest.mark.parametrize("prefill", [1, 4])
def test_cached_generation_matches_full_forward(prefill: int) -> None:
    incremental, full = cached_vs_full(kron_model(kron_rank=2), random_ids(2, 12, 5), prefill)
    assert_close_scaled(incremental, full)


def test_budget_within_five_percent_of_static_lora_on_embedded_dims() -> None:
    variant = KroneckerModel(embedded_gpt2(), KroneckerConfig())
    params, flops = budget_ratios(variant)
    assert params == pytest.approx(1 + 4 * 640 / 65536)  # 4 layers x (8·16 + 16·32)
    assert abs(params - 1) <= 0.05, params
    assert abs(flops - 1) <= 0.05, flops
    assert flops > 1  # the Kronecker GEMMs are counted


def test_config_defaults_and_validation() -> None:
    cfg = KroneckerConfig()
    assert (cfg.variant, cfg.kron_rank, cfg.spectral_budget) == ("kronecker_down", 1, 1.0)
    assert cfg.kron_targets == ["mlp.c_proj"] and cfg.rank_dimension == 8
    for bad in ({"kron_rank": 0}, {"spectral_budget": 0.0}, {"kron_targets": []}, {"x": 1}):
        with pytest.raises(ValidationError):
            KroneckerConfig(**bad)
