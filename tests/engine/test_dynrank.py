"""V1 dynamic rank: k-hot chunk-sticky masks routed from the prompt at prefill, PT1
head-group gates, cached-generation exactness, STE, budget parity."""

import pytest
import torch
from pydantic import ValidationError
from transformers import GPT2Config, GPT2LMHeadModel

from engine.evaluation.generation import greedy_generate
from engine.models.base_model import embedded_config_dict
from engine.models.tokenizer import ByteTokenizer
from engine.variants.base import LoraLayer
from engine.variants.build import build_adapter_model
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.dynrank.model import DynamicRankModel, chunk_features, k_hot_ste
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel
from store.errors import BemctlError
from tests.engine.variants.helpers import budget_ratios, embedded_gpt2
from tests.tolerance import assert_close_scaled

VOCAB = 259


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=4,
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


def _cached_vs_full(model, ids, prefill: int, prompted: bool, cache: bool):
    """(prefill + one token at a time, one full pass); with `prompted` the prefill is the
    prompt (prompt_lengths = prefill in both), as in generation and training."""
    prompt = torch.full((ids.shape[0],), prefill) if prompted else None
    with torch.no_grad():
        full = model(input_ids=ids, prompt_lengths=prompt).logits
        routing: dict | None = {} if cache else None
        out = model(
            input_ids=ids[:, :prefill], use_cache=True, routing_cache=routing, prompt_lengths=prompt
        )
        steps = [out.logits]
        for t in range(prefill, ids.shape[1]):
            out = model(
                input_ids=ids[:, t : t + 1],
                cache=out.cache,
                context_ids=ids[:, :t],
                use_cache=True,
                routing_cache=routing,
                prompt_lengths=None if cache else prompt,  # the cache keeps the prefill's
            )
            steps.append(out.logits)
    return torch.cat(steps, dim=1), full


@pytest.mark.parametrize("prompted", [False, True])
@pytest.mark.parametrize("prefill", [1, 3, 6, 9])
def test_cached_generation_matches_full_forward(prefill: int, prompted: bool) -> None:
    model = dynrank(chunk_size=4)
    ids = random_ids(2, 15, seed=7)  # crosses 3 chunk boundaries
    incremental, full = _cached_vs_full(model, ids, prefill, prompted, cache=False)
    assert incremental.shape == full.shape
    assert_close_scaled(incremental, full)


@pytest.mark.parametrize("prefill", [3, 6, 9])
def test_cached_generation_with_a_routing_cache_matches_full_forward(prefill: int) -> None:
    """With the routing cache batch 1 decodes with folded masks and cached gates."""
    model = dynrank(chunk_size=4)
    ids = random_ids(1, 15, seed=17)
    incremental, full = _cached_vs_full(model, ids, prefill, prompted=True, cache=True)
    assert_close_scaled(incremental, full)


def test_cached_generation_needs_context_to_match() -> None:
    """Without context_ids a late token is routed as if it were chunk 0: the test above is real."""
    model = dynrank(chunk_size=4)
    ids = random_ids(2, 12, seed=8)
    with torch.no_grad():
        full = model(input_ids=ids).logits
        out = model(input_ids=ids[:, :11], use_cache=True)
        last = model(input_ids=ids[:, 11:], cache=out.cache, use_cache=True).logits
    assert (last[:, 0] - full[:, 11]).abs().max() > 1e-4


# ---------------------------------------------------------------- prefill routing


def test_prompt_chunks_are_routed_from_the_prompt() -> None:
    """Without a prompt chunk 0 is routed by the bias alone (one mask for every row); told
    where the prompt ends, every prompt chunk is routed from the prompt's own tokens."""
    model = dynrank(chunk_size=8)
    ids = random_ids(6, 12, seed=21)
    blind = _masks(model, ids)
    assert all(torch.equal(blind[i, 0], blind[0, 0]) for i in range(6))
    with torch.no_grad():
        model(input_ids=ids, prompt_lengths=torch.full((6,), 10))
    prompted = model.last_masks
    assert any(not torch.equal(prompted[i, 0], prompted[0, 0]) for i in range(6))
    assert any(not torch.equal(prompted[i, 1], prompted[0, 1]) for i in range(6))  # 8..9


def test_prompt_routing_reads_the_prompt_only() -> None:
    """Chunk 0 holds prompt (0..5) and answer (6..7) tokens: editing the answer tokens
    leaves its routing alone, editing a prompt token changes it; the generated chunk after
    the prompt is routed causally from the chunk before it."""
    model = dynrank(chunk_size=8)
    ids = random_ids(4, 16, seed=22)
    prompt = torch.full((4,), 6)

    def route(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            model(input_ids=x, prompt_lengths=prompt)
        return model.last_masks.clone()

    before = route(ids)
    answer = ids.clone()
    answer[:, 6:] = random_ids(4, 10, seed=23)
    after = route(answer)
    assert torch.equal(after[:, 0], before[:, 0])
    assert not torch.equal(after[:, 1], before[:, 1])  # chunk 1 reads chunk 0: answer included
    edited = ids.clone()
    edited[:, 2] = (edited[:, 2] + 1) % 256
    assert not torch.equal(route(edited)[:, 0], before[:, 0])


def test_full_pass_routing_per_row_equals_each_rows_own_prefill() -> None:
    """Rows of one training batch with different prompt lengths are routed as their own
    prefills would route them (right padding keeps positions; lengths are per row)."""
    model = dynrank(chunk_size=4)
    ids = random_ids(3, 14, seed=24)
    lengths = torch.tensor([3, 9, 14])
    with torch.no_grad():
        model(input_ids=ids, prompt_lengths=lengths)
    batched = model.last_masks
    for row, length in enumerate(lengths.tolist()):
        alone = model.routing_decisions(ids[row : row + 1], torch.tensor([length]))[0]
        positions = torch.arange(14)
        assert torch.equal(alone, batched[row, positions // 4])


def test_greedy_generation_routes_the_prompt_at_prefill_and_times_it() -> None:
    model = dynrank(chunk_size=64)
    tok = ByteTokenizer()
    routing: dict = {"trace": []}
    prompt = "abc: red; xyz: owl\nQ: what is xyz?\nA:"
    greedy_generate(model, tok, prompt, 6, torch.device("cpu"), 128, False, routing)
    n_prompt = len(tok.encode(prompt))
    assert routing["prompt_length"] == n_prompt
    assert routing["pregen_ms"] > 0  # the prefill's routing, timed on its own
    used = torch.cat(routing["trace"], dim=1)[0]
    fresh = model.routing_decisions(routing["ids"][:, : used.shape[0]], torch.tensor([n_prompt]))
    assert torch.equal(used, fresh[0])


# ---------------------------------------------------------------- PT1 head-group gates


def _attention_inputs(model: DynamicRankModel, ids: torch.Tensor, **kwargs) -> list:
    """What each attention output projection receives in one forward (after the gates)."""
    seen: list = []
    projections = [block.attn.c_proj for block in model.base_model.transformer.h]
    handles = [
        p.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()), prepend=False)
        for p in projections
    ]
    with torch.no_grad():
        model(input_ids=ids, **kwargs)
    for h in handles:
        h.remove()
    return seen


def test_head_gates_start_at_identity() -> None:
    model = DynamicRankModel(tiny_gpt2(0), DynamicRankConfig(chunk_size=4, head_groups=2))
    ids = random_ids(2, 10, seed=30)
    with torch.no_grad():
        gates = model.routing_gates(ids, torch.tensor([6, 6]))
    assert gates.shape == (2, 10, model.n_blocks, 2)
    assert torch.equal(gates, torch.ones_like(gates))


def test_head_gates_scale_each_group_of_heads_per_chunk() -> None:
    model = dynrank(chunk_size=4, head_groups=2)
    ids = random_ids(2, 10, seed=31)
    prompt = torch.tensor([5, 5])
    gated = _attention_inputs(model, ids, prompt_lengths=prompt)
    model._hooks[0].remove()  # layer 0 ungated: its input is the raw merged head output
    raw = _attention_inputs(model, ids, prompt_lengths=prompt)[0]
    gates = model.routing_gates(ids, prompt)[:, :, 0]  # (B, T, groups) of layer 0
    assert not torch.allclose(gates, torch.ones_like(gates))
    half = raw.shape[-1] // 2  # 4 heads, 2 groups: channels [0, 16) and [16, 32)
    expected = torch.cat(
        [raw[..., :half] * gates[..., :1], raw[..., half:] * gates[..., 1:]], dim=-1
    )
    assert_close_scaled(gated[0], expected)
    assert bool(((gates >= 0) & (gates <= 2)).all())  # 2·sigmoid, saturating in float32


def test_head_gates_get_gradient() -> None:
    model = DynamicRankModel(tiny_gpt2(0), DynamicRankConfig(chunk_size=4))
    with torch.no_grad():
        for layer in model.lora_layers.values():
            layer.lora_u.normal_(0, 0.5)
    model.train()
    ids = random_ids(2, 12, seed=32)
    logits = model(input_ids=ids, prompt_lengths=torch.tensor([8, 8])).logits
    torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1)
    ).backward()
    grad = model.predictor[2].weight.grad[model.n_mask_logits :]
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()


def test_head_groups_must_divide_the_heads() -> None:
    with pytest.raises(ValueError, match="head_groups 3 must divide the model's 4 attention heads"):
        DynamicRankModel(tiny_gpt2(0), DynamicRankConfig(head_groups=3))
    with pytest.raises(BemctlError, match=r"v1\.yml: bem_config\.head_groups 8 must divide"):
        build_adapter_model("variant", DynamicRankConfig(head_groups=8), tiny_gpt2(0), 0, "v1.yml")


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_every_divisor_of_the_heads_is_accepted(groups: int) -> None:
    model = DynamicRankModel(tiny_gpt2(0), DynamicRankConfig(head_groups=groups))
    assert model.head_groups == groups
    assert int(model.channel_group.max()) == groups - 1


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
    assert (config["n_layer"], config["n_embd"], config["n_head"]) == (4, 128, 4)
    torch.manual_seed(0)
    baseline = StaticLoraModel(GPT2LMHeadModel(GPT2Config(**config)), LoraConfig())
    variant = DynamicRankModel(GPT2LMHeadModel(GPT2Config(**config)), DynamicRankConfig())
    base_trainable = baseline.parameter_counts()[1]
    variant_trainable = variant.parameter_counts()[1]
    assert variant_trainable > base_trainable  # the predictor is extra
    assert abs(variant_trainable / base_trainable - 1) <= 0.05
    predictor = sum(p.numel() for p in variant.predictor.parameters())
    assert variant_trainable - base_trainable == predictor
    # the 4 x 4 head-group gates: one output (predictor_hidden weights + a bias) each
    assert predictor == 128 * 8 + 8 + (8 + 1) * (4 * 8 + 4 * 4)


def test_budget_parity_of_params_and_flops_with_head_gates() -> None:
    params, flops = budget_ratios(DynamicRankModel(embedded_gpt2(), DynamicRankConfig()))
    assert abs(params - 1) <= 0.05 and abs(flops - 1) <= 0.05, (params, flops)
