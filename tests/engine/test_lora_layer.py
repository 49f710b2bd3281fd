"""LoraLayer / inject_lora / AdapterModel plumbing and the masked-LoRA reference kernel."""

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from engine.variants.base import AdapterModel, LoraLayer, inject_lora
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel
from triton_ops import masked_lora, masked_lora_reference

TARGETS = ("c_attn", "c_proj", "c_fc")


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=259,
        n_positions=128,
        bos_token_id=257,
        eos_token_id=258,
    )
    return GPT2LMHeadModel(config).eval()


def _operands(
    seed: int = 0, batch: int = 2, length: int = 5, d_in: int = 6, d_out: int = 4, rank: int = 3
):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d_in, generator=g)
    weight = torch.randn(d_in, d_out, generator=g)
    bias = torch.randn(d_out, generator=g)
    v = torch.randn(d_in, rank, generator=g)
    u = torch.randn(d_out, rank, generator=g)
    mask = (torch.rand(batch, length, rank, generator=g) > 0.5).float()
    return x, weight, bias, v, u, mask


# ---------------------------------------------------------------- masked_lora kernel


def test_masked_lora_reference_equals_manual_loops() -> None:
    x, w, b, v, u, mask = _operands()
    out = masked_lora_reference(x, w, b, v, u, mask, 0.5)
    expected = torch.empty_like(out)
    for i in range(x.shape[0]):
        for t in range(x.shape[1]):
            xt = x[i, t]
            base = xt @ w + b
            delta = torch.zeros(w.shape[1])
            for j in range(v.shape[1]):  # rank components, each gated by its mask bit
                delta += mask[i, t, j] * (xt @ v[:, j]) * u[:, j]
            expected[i, t] = base + 0.5 * delta
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert out.shape == (2, 5, 4)


def test_masked_lora_none_mask_equals_all_ones() -> None:
    x, w, b, v, u, _ = _operands(seed=1)
    ones = torch.ones(x.shape[0], x.shape[1], v.shape[1])
    torch.testing.assert_close(
        masked_lora_reference(x, w, b, v, u, None, 2.0),
        masked_lora_reference(x, w, b, v, u, ones, 2.0),
    )


def test_masked_lora_zero_mask_is_plain_projection() -> None:
    x, w, b, v, u, _ = _operands(seed=2)
    zeros = torch.zeros(x.shape[0], x.shape[1], v.shape[1])
    torch.testing.assert_close(masked_lora_reference(x, w, b, v, u, zeros, 2.0), x @ w + b)


def test_masked_lora_without_bias() -> None:
    x, w, _, v, u, mask = _operands(seed=3)
    expected = x @ w + 0.25 * ((x @ v) * mask) @ u.t()
    torch.testing.assert_close(masked_lora_reference(x, w, None, v, u, mask, 0.25), expected)


def test_masked_lora_dispatch_matches_reference() -> None:
    x, w, b, v, u, mask = _operands(seed=4)
    assert torch.equal(
        masked_lora(x, w, b, v, u, mask, 1.5), masked_lora_reference(x, w, b, v, u, mask, 1.5)
    )


# ---------------------------------------------------------------- LoraLayer


def test_lora_layer_on_linear_matches_formula() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    layer = LoraLayer(base, rank=3, scaling=0.5, block_index=0)
    assert not layer.is_conv1d
    assert (layer.in_features, layer.out_features) == (6, 4)
    assert layer.lora_v.shape == (6, 3) and layer.lora_u.shape == (4, 3)
    with torch.no_grad():
        layer.lora_u.normal_()
    x = torch.randn(2, 5, 6)
    mask = (torch.rand(2, 5, 3) > 0.5).float()
    layer.mask = mask
    expected = base(x) + 0.5 * ((x @ layer.lora_v) * mask) @ layer.lora_u.t()
    torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=1e-5)
    layer.mask = None
    expected_static = base(x) + 0.5 * (x @ layer.lora_v) @ layer.lora_u.t()
    torch.testing.assert_close(layer(x), expected_static, atol=1e-6, rtol=1e-5)


def test_lora_layer_on_gpt2_conv1d_matches_formula() -> None:
    model = tiny_gpt2()
    conv = model.transformer.h[0].mlp.c_fc
    assert type(conv).__name__ == "Conv1D"
    assert conv.weight.shape == (32, 128)  # (in, out)
    layer = LoraLayer(conv, rank=4, scaling=2.0, block_index=0)
    assert layer.is_conv1d
    assert (layer.in_features, layer.out_features) == (32, 128)
    with torch.no_grad():
        layer.lora_u.normal_()
    x = torch.randn(2, 3, 32)
    expected = conv(x) + 2.0 * (x @ layer.lora_v) @ layer.lora_u.t()
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_lora_layer_fresh_init_is_identity_on_base() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    layer = LoraLayer(base, rank=3, scaling=4.0, block_index=0)
    assert torch.count_nonzero(layer.lora_u) == 0
    assert torch.count_nonzero(layer.lora_v) > 0  # V random, U zero (as peft)
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), base(x))


def test_lora_layer_refuses_other_modules() -> None:
    with pytest.raises(TypeError, match="Embedding"):
        LoraLayer(nn.Embedding(10, 4), rank=2, scaling=1.0, block_index=0)


def test_delta_weight_is_in_out_layout() -> None:
    base = nn.Linear(6, 4)
    layer = LoraLayer(base, rank=3, scaling=0.5, block_index=0)
    with torch.no_grad():
        layer.lora_u.normal_()
    delta = layer.delta_weight()
    assert delta.shape == (6, 4)
    torch.testing.assert_close(delta, 0.5 * layer.lora_v @ layer.lora_u.t())
    # merging ΔW into the base weight reproduces the adapted output
    x = torch.randn(5, 6)
    torch.testing.assert_close(
        layer(x), x @ (base.weight.t() + delta) + base.bias, atol=1e-5, rtol=1e-5
    )


# ---------------------------------------------------------------- inject_lora / AdapterModel


def test_adapter_with_fresh_init_leaves_model_output_unchanged() -> None:
    model = tiny_gpt2()
    ids = torch.randint(0, 259, (2, 12))
    with torch.no_grad():
        before = model(input_ids=ids).logits.clone()
        adapted = StaticLoraModel(model, LoraConfig()).eval()
        after = adapted(input_ids=ids).logits
    torch.testing.assert_close(after, before)


def test_inject_lora_replaces_every_target_with_block_index() -> None:
    model = tiny_gpt2()
    replaced = inject_lora(model, LoraConfig(rank_dimension=4))
    expected = {
        f"transformer.h.{i}.{name}"
        for i in range(2)
        for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    }
    assert set(replaced) == expected
    for name, layer in replaced.items():
        assert isinstance(layer, LoraLayer)
        assert model.get_submodule(name) is layer
        assert layer.block_index == int(name.split(".")[2])
        assert layer.rank == 4
        assert type(layer.base).__name__ == "Conv1D"
    # nothing left un-wrapped
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in TARGETS:
            assert isinstance(module, LoraLayer), name


def test_inject_lora_subset_of_targets() -> None:
    model = tiny_gpt2()
    replaced = inject_lora(model, LoraConfig(target_modules=["c_attn"]))
    assert sorted(replaced) == ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"]
    assert not isinstance(model.transformer.h[0].mlp.c_fc, LoraLayer)


def test_inject_lora_twice_does_not_double_wrap() -> None:
    model = tiny_gpt2()
    config = LoraConfig(target_modules=["c_attn"])
    inject_lora(model, config)
    # second pass finds the LoraLayers (skipped) and nothing else matching
    with pytest.raises(ValueError, match="matched no module"):
        inject_lora(model, config)
    assert type(model.transformer.h[0].attn.c_attn.base).__name__ == "Conv1D"


def test_inject_lora_matching_nothing_raises() -> None:
    model = tiny_gpt2()
    with pytest.raises(ValueError, match=r"q_proj"):
        inject_lora(model, LoraConfig(target_modules=["q_proj", "v_proj"]))


def test_only_adapter_params_are_trainable_and_counts() -> None:
    model = tiny_gpt2()
    base_total = sum(p.numel() for p in model.parameters())
    adapted = StaticLoraModel(model, LoraConfig(rank_dimension=4))
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable
    assert all(n.endswith(("lora_u", "lora_v")) for n in trainable)
    assert len(trainable) == 2 * len(adapted.lora_layers) == 16
    assert adapted.n_blocks == 2

    # per block: c_attn 32->96, attn.c_proj 32->32, c_fc 32->128, mlp.c_proj 128->32
    per_block = sum(4 * (i + o) for i, o in ((32, 96), (32, 32), (32, 128), (128, 32)))
    total, n_trainable = adapted.parameter_counts()
    assert n_trainable == 2 * per_block
    assert total == base_total + n_trainable


def test_trainable_state_dict_round_trip() -> None:
    source = StaticLoraModel(tiny_gpt2(seed=0), LoraConfig(rank_dimension=4))
    with torch.no_grad():
        for layer in source.lora_layers.values():
            layer.lora_u.normal_()
    state = source.trainable_state_dict()
    assert set(state) == {n for n, p in source.named_parameters() if p.requires_grad}
    assert all(not t.requires_grad and t.device.type == "cpu" for t in state.values())

    target = StaticLoraModel(tiny_gpt2(seed=0), LoraConfig(rank_dimension=4))
    target.load_trainable_state_dict(state)
    for name, tensor in target.trainable_state_dict().items():
        assert torch.equal(tensor, state[name]), name
    ids = torch.randint(0, 259, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(target(input_ids=ids).logits, source(input_ids=ids).logits)


def test_load_trainable_state_dict_refuses_missing_keys() -> None:
    adapted = StaticLoraModel(tiny_gpt2(), LoraConfig(rank_dimension=2))
    state = adapted.trainable_state_dict()
    state.pop(next(iter(state)))
    with pytest.raises(KeyError, match="adapter weights miss"):
        adapted.load_trainable_state_dict(state)


def test_delta_weights_shapes() -> None:
    adapted = StaticLoraModel(tiny_gpt2(), LoraConfig(rank_dimension=4))
    deltas = adapted.delta_weights()
    assert set(deltas) == set(adapted.lora_layers)
    expected = {
        "attn.c_attn": (32, 96),
        "attn.c_proj": (32, 32),
        "mlp.c_fc": (32, 128),
        "mlp.c_proj": (128, 32),
    }
    for name, delta in deltas.items():
        suffix = name.split(".", 3)[-1]
        assert delta.shape == expected[suffix], name
        assert torch.count_nonzero(delta) == 0  # U starts at zero


def test_adapter_forward_clears_masks() -> None:
    adapted = AdapterModel(tiny_gpt2(), LoraConfig(rank_dimension=2))
    for layer in adapted.lora_layers.values():
        layer.mask = torch.ones(1, 4, 2)
    with torch.no_grad():
        adapted(input_ids=torch.randint(0, 259, (1, 4)))
    assert all(layer.mask is None for layer in adapted.lora_layers.values())
