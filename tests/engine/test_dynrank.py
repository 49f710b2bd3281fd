"""V1 dynamic rank: k-hot chunk-sticky masks, cached-generation exactness, STE, budget parity."""

import pytest
import torch
from pydantic import ValidationError
from transformers import GPT2Config, GPT2LMHeadModel

from engine.models.base_model import embedded_config_dict
from engine.variants.base import LoraLayer
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.dynrank.model import DynamicRankModel, chunk_features, k_hot_ste
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel

VOCAB = 259


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=128,
        bos_token_id=257,
        eos_token_id=258,
    )
    return GPT2LMHeadModel(config).eval()


def dynrank(chunk_size: int = 4, seed: int = 0, **kwargs) -> DynamicRankModel:
    model = DynamicRankModel(tiny_gpt2(seed), DynamicRankConfig(chunk_size=chunk_size, **kwargs))
    torch.manual_seed(seed + 1)
    with torch.no_grad():  # a trained-looking adapter, so masks actually change the output
        for layer in model.lora_layers.values():
            layer.lora_u.normal_(0, 0.5)
        # unit-scale embeddings and a bias-free predictor: routing depends on the tokens
        model.base_model.get_input_embeddings().weight.normal_(0, 1.0)
        for name, p in model.predictor.named_parameters():
            p.normal_(0, 1.0) if name.endswith("weight") else p.zero_()
    return model.eval()


def random_ids(batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- config


def test_config_k_active() -> None:
    assert DynamicRankConfig().k_active == 4  # 0.5 * 8
    assert DynamicRankConfig(rank_dimension=16, active_ratio=0.25).k_active == 4
    assert DynamicRankConfig(rank_dimension=8, active_ratio=0.01).k_active == 1
    assert DynamicRankConfig(rank_dimension=8, active_ratio=1.0).k_active == 8


@pytest.mark.parametrize(
    "field, value",
    [
        ("active_ratio", 0.0),
        ("active_ratio", 1.5),
        ("chunk_size", 0),
        ("temperature", 0.0),
        ("unknown_knob", 1),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        DynamicRankConfig(**{field: value})


# ---------------------------------------------------------------- building blocks


def test_k_hot_ste_forward_is_exactly_k_hot() -> None:
    scores = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    mask = k_hot_ste(scores, 3, 1.0)
    assert torch.equal(mask, mask.round()), "forward values must be exactly 0 or 1"
    assert torch.equal(mask.sum(-1), torch.full((500,), 3.0))
    top = scores.topk(3, dim=-1).indices
    assert torch.equal(mask.gather(-1, top), torch.ones(500, 3))


def test_k_hot_ste_gradient_is_sigmoid_surrogate() -> None:
    scores = torch.randn(4, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
    weights = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    (k_hot_ste(scores, 2, 2.0) * weights).sum().backward()
    s = torch.sigmoid(scores.detach() / 2.0)
    torch.testing.assert_close(scores.grad, weights * s * (1 - s) / 2.0)


def test_chunk_features_is_previous_chunk_mean() -> None:
    emb = torch.randn(2, 10, 3, generator=torch.Generator().manual_seed(0))
    feats = chunk_features(emb, 4)  # chunks [0:4], [4:8], [8:10]
    assert feats.shape == (2, 3, 3)
    assert torch.equal(feats[:, 0], torch.zeros(2, 3))
    torch.testing.assert_close(feats[:, 1], emb[:, 0:4].mean(1))
    torch.testing.assert_close(feats[:, 2], emb[:, 4:8].mean(1))


def test_chunk_features_partial_last_chunk_counts() -> None:
    # the partial last chunk's own pooled mean is never used as a feature, but a following
    # call with more tokens must agree with this one on every shared chunk
    emb = torch.randn(1, 13, 2, generator=torch.Generator().manual_seed(3))
    short = chunk_features(emb[:, :9], 4)
    long = chunk_features(emb, 4)
    torch.testing.assert_close(short, long[:, : short.shape[1]])


# ---------------------------------------------------------------- masks in the forward


def _capture_masks(model: DynamicRankModel) -> tuple[dict[str, torch.Tensor], list]:
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name, layer in model.lora_layers.items():

        def hook(module: LoraLayer, args, name=name) -> None:
            seen[name] = module.mask.detach().clone()

        handles.append(layer.register_forward_pre_hook(hook))
    return seen, handles


def test_forward_masks_are_k_hot_per_chunk_and_block() -> None:
    model = dynrank(chunk_size=4)
    cfg = model.config
    k, r = cfg.k_active, cfg.rank_dimension
    ids = random_ids(3, 14, seed=0)  # chunks of 4, 4, 4, 2
    seen, handles = _capture_masks(model)
    with torch.no_grad():
        model(input_ids=ids)
    for h in handles:
        h.remove()

    masks = model.last_masks
    assert masks.shape == (3, 4, model.n_blocks, r)
    assert torch.equal(masks, masks.round()), "mask values must be exactly 0 or 1"
    assert torch.equal(masks.sum(-1), torch.full((3, 4, model.n_blocks), float(k)))

    assert set(seen) == set(model.lora_layers)
    for name, mask in seen.items():
        block = model.lora_layers[name].block_index
        assert mask.shape == (3, 14, r)
        assert torch.equal(mask, mask.round())
        assert torch.equal(mask.sum(-1), torch.full((3, 14), float(k)))
        for t in range(14):  # every token of a chunk uses that chunk's mask
            assert torch.equal(mask[:, t], masks[:, t // 4, block])
    # after the forward the layers no longer hold a mask
    assert all(layer.mask is None for layer in model.lora_layers.values())


def test_masks_differ_between_blocks_and_chunks() -> None:
    model = dynrank(chunk_size=4)
    with torch.no_grad():
        model(input_ids=random_ids(4, 16, seed=5))
    masks = model.last_masks
    assert not torch.equal(masks[:, :, 0], masks[:, :, 1])
    assert not torch.equal(masks[:, 0], masks[:, 1])


def _masks(model: DynamicRankModel, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        model(input_ids=ids)
    return model.last_masks.clone()


@pytest.mark.parametrize("chunk", [0, 1, 2, 3])
def test_chunk_mask_ignores_its_own_and_later_tokens(chunk: int) -> None:
    model = dynrank(chunk_size=4)
    ids = random_ids(6, 16, seed=1)
    before = _masks(model, ids)
    edited = ids.clone()
    edited[:, chunk * 4 :] = random_ids(6, 16 - chunk * 4, seed=2)
    after = _masks(model, edited)
    assert torch.equal(after[:, : chunk + 1], before[:, : chunk + 1])
    if chunk < 3:  # and the chunk right after the edit is routed from the new tokens
        assert not torch.equal(after[:, chunk + 1], before[:, chunk + 1])


def test_chunk_zero_depends_on_nothing() -> None:
    model = dynrank(chunk_size=4)
    masks = _masks(model, random_ids(5, 8, seed=3))
    other = _masks(model, random_ids(5, 3, seed=4))
    for i in range(5):
        assert torch.equal(masks[i, 0], masks[0, 0])
        assert torch.equal(other[i, 0], masks[0, 0])


def test_context_ids_give_the_same_routing_as_the_full_sequence() -> None:
    model = dynrank(chunk_size=4)
    ids = random_ids(2, 11, seed=6)
    seen_full, handles = _capture_masks(model)
    with torch.no_grad():
        model(input_ids=ids)
    full = {n: m.clone() for n, m in seen_full.items()}
    seen_full.clear()
    with torch.no_grad():
        model(input_ids=ids[:, 9:], context_ids=ids[:, :9])
    for h in handles:
        h.remove()
    for name, mask in seen_full.items():
        expected = full[name][:, 9:]
        assert torch.equal(mask.expand_as(expected), expected)  # (B, 1, r) broadcasts per chunk


# ---------------------------------------------------------------- cached generation


@pytest.mark.parametrize("prefill", [1, 3, 6])
def test_cached_generation_matches_full_forward(prefill: int) -> None:
    model = dynrank(chunk_size=4)
    ids = random_ids(2, 15, seed=7)  # crosses 3 chunk boundaries
    with torch.no_grad():
        full = model(input_ids=ids).logits
        out = model(input_ids=ids[:, :prefill], use_cache=True)
        steps = [out.logits]
        for t in range(prefill, ids.shape[1]):
            out = model(
                input_ids=ids[:, t : t + 1],
                past_key_values=out.past_key_values,
                context_ids=ids[:, :t],
                use_cache=True,
            )
            steps.append(out.logits)
    incremental = torch.cat(steps, dim=1)
    assert incremental.shape == full.shape
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=0)


def test_cached_generation_needs_context_to_match() -> None:
    """Without context_ids a late token is routed as if it were chunk 0: the test above is real."""
    model = dynrank(chunk_size=4)
    ids = random_ids(2, 12, seed=8)
    with torch.no_grad():
        full = model(input_ids=ids).logits
        out = model(input_ids=ids[:, :11], use_cache=True)
        last = model(
            input_ids=ids[:, 11:], past_key_values=out.past_key_values, use_cache=True
        ).logits
    assert (last[:, 0] - full[:, 11]).abs().max() > 1e-4


# ---------------------------------------------------------------- training signal


def test_ste_passes_gradient_to_predictor() -> None:
    model = dynrank(chunk_size=4)
    model.train()
    ids = random_ids(2, 12, seed=9)
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1)
    )
    loss.backward()
    for name, p in model.predictor.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # the frozen base gets no gradient at all
    assert all(p.grad is None for p in model.base_model.parameters() if not p.requires_grad)


def test_predictor_is_trainable_and_base_frozen() -> None:
    model = dynrank()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {f"predictor.{n}" for n, _ in model.predictor.named_parameters()} <= trainable
    assert all(n.startswith("predictor.") or n.endswith(("lora_u", "lora_v")) for n in trainable)


def test_parameter_parity_with_static_lora_on_embedded_dims() -> None:
    config = embedded_config_dict()
    assert (config["n_layer"], config["n_embd"]) == (4, 128)
    torch.manual_seed(0)
    baseline = StaticLoraModel(GPT2LMHeadModel(GPT2Config(**config)), LoraConfig())
    variant = DynamicRankModel(GPT2LMHeadModel(GPT2Config(**config)), DynamicRankConfig())
    base_trainable = baseline.parameter_counts()[1]
    variant_trainable = variant.parameter_counts()[1]
    assert variant_trainable > base_trainable  # the predictor is extra
    assert abs(variant_trainable / base_trainable - 1) <= 0.05
    predictor = sum(p.numel() for p in variant.predictor.parameters())
    assert variant_trainable - base_trainable == predictor
