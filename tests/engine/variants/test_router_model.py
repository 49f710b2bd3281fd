"""Router model: prompt chunks planned from the prompt at prefill, chunk-sticky causal routing
after it, trust-region bound, expert layout, budget."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.router.actions import Action
from engine.router.plan import mean_plan_length, switch_rate
from engine.variants.build import build_adapter_model
from engine.variants.router.config import RouterBCConfig
from engine.variants.router.model import RouterModel, pooled_chunks
from tests.engine.variants.helpers import embedded_gpt2, random_ids, tiny_gpt2
from tests.tolerance import assert_close_scaled


def _router(chunk_size: int = 8, seed: int = 0, **overrides) -> RouterModel:
    config = RouterBCConfig(rank_dimension=4, chunk_size=chunk_size, **overrides)
    torch.manual_seed(seed)
    model = RouterModel(tiny_gpt2(seed), config)
    with torch.no_grad():  # trained-looking experts and a decisive, input-dependent policy
        for layer in model.lora_layers.values():
            layer.lora_u.normal_(0, 0.5)
        for head in model.policy.heads:
            head.weight.normal_(0, 3.0)
    return model.eval()


def test_pooled_chunks_see_only_earlier_chunks() -> None:
    x = torch.arange(10.0).view(1, 10, 1)
    previous, prefix = pooled_chunks(x, 4)  # chunks [0..3], [4..7], [8, 9]
    assert previous[0, :, 0].tolist() == [0.0, 1.5, 5.5]
    assert prefix[0, :, 0].tolist() == [0.0, 1.5, 3.5]


@pytest.mark.parametrize("prompt", [0, 5, 11])  # 0: no prompt (all causal); 11: 2 chunks
def test_cached_decoding_keeps_earlier_chunks_kv_exact(prompt: int) -> None:
    """Decode token by token across chunk boundaries (new routing decisions on the way);
    the cached K/V of every position equal a single full pass over the final sequence told
    where the prompt ends, and so does every position's action."""
    model = _router(chunk_size=8, max_plan_length=3, switch_cost=0.0, hysteresis_tau=0.0)
    ids = random_ids(1, max(prompt, 5), seed=1)
    lengths = torch.tensor([prompt]) if prompt else None
    routing: dict = {"trace": []}
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True, routing_cache=routing, prompt_lengths=lengths)
        past, context = out.cache, ids
        for step in range(30):  # 5 + 30 tokens: chunks 0..4
            nxt = random_ids(1, 1, seed=100 + step)
            out = model(
                input_ids=nxt,
                cache=past,
                context_ids=context,
                use_cache=True,
                routing_cache=routing,
            )
            past, context = out.cache, torch.cat([context, nxt], 1)
        full = model(input_ids=context, use_cache=True, prompt_lengths=lengths).cache
    used = torch.cat(routing["trace"], dim=1)[0, :, 0]
    assert len(set(used.tolist())) > 1  # the test exercises real switches
    for layer in range(len(full.layers)):
        assert_close_scaled(past.layers[layer].keys, full.layers[layer].keys)
        assert_close_scaled(past.layers[layer].values, full.layers[layer].values)
    fresh = model.routing_decisions(context[:, : used.shape[0]], lengths)[0, :, 0]
    assert torch.equal(used, fresh)


def test_prompt_chunks_are_planned_from_the_prompt() -> None:
    """Without a prompt every sequence's first chunk sees zeros (one blind first action);
    told where the prompt ends, the first chunk is decided from the prompt's own content,
    which depends on the prompt only (not on tokens after it in the same chunk)."""
    model = _router(chunk_size=8)
    with torch.no_grad():  # unit-scale embeddings: content, not the one-hot, moves the policy
        model.base_model.get_input_embeddings().weight.normal_(0, 1.0)
    ids = random_ids(12, 12, seed=40)
    blind_prev, blind_evidence = model.chunk_states(ids)
    assert torch.equal(blind_prev[:, 0], torch.zeros_like(blind_prev[:, 0]))
    lengths = torch.full((12,), 6)
    previous, evidence = model.chunk_states(ids, lengths)
    embeddings = model.base_model.get_input_embeddings()(ids).detach()
    assert_close_scaled(previous[:, 0], embeddings[:, :6].mean(1))  # chunk 0's prompt tokens
    assert_close_scaled(evidence[:, 0], embeddings[:, :6].mean(1))  # the prompt up to it
    assert_close_scaled(previous[:, 1], embeddings[:, :8].mean(1))  # generated: chunk 0
    edited = ids.clone()
    edited[:, 6:] = random_ids(12, 6, seed=41)
    again = model.chunk_states(edited, lengths)
    assert torch.equal(again[0][:, 0], previous[:, 0]) and torch.equal(
        again[1][:, 0], evidence[:, 0]
    )
    firsts = {model.plan(previous[b], evidence[b]).chunk_actions[0] for b in range(12)}
    blind = {model.plan(blind_prev[b], blind_evidence[b]).chunk_actions[0] for b in range(12)}
    assert len(blind) == 1 and len(firsts) > 1


def test_generation_plans_the_prompt_at_prefill_and_times_it() -> None:
    from engine.evaluation.generation import greedy_generate
    from engine.models.tokenizer import ByteTokenizer

    model = _router(chunk_size=8)
    tok = ByteTokenizer()
    prompt = "reply: json\nabc: red; xyz: owl\nQ: what is xyz?\nJSON:"
    routing: dict = {"trace": []}
    greedy_generate(model, tok, prompt, 10, torch.device("cpu"), 128, False, routing)
    n = len(tok.encode(prompt))
    assert routing["prompt_length"] == n and routing["pregen_ms"] > 0
    used = torch.cat(routing["trace"], dim=1)[0]
    fresh = model.routing_decisions(routing["ids"][:, : used.shape[0]], torch.tensor([n]))[0]
    assert torch.equal(used, fresh)


def test_plans_respect_the_cap_and_chunk_boundaries() -> None:
    model = _router(chunk_size=4, max_plan_length=2, switch_cost=0.0, hysteresis_tau=0.0)
    ids = random_ids(6, 40, seed=3)
    with torch.no_grad():
        model(input_ids=ids)
    plans = model.last_plans
    assert len(plans) == 6 and all(len(p.chunk_actions) == 10 for p in plans)
    assert max(p.plan_length for p in plans) <= 2
    assert mean_plan_length(plans) <= 2 and 0.0 <= switch_rate(plans) <= 1.0


def test_trust_region_bounds_every_applied_delta() -> None:
    tau = 0.05
    model = _router(trust_region_tau=tau)
    ids = random_ids(2, 20, seed=4)
    with torch.no_grad():
        model.prepare(ids, None)
        for layer in model.lora_layers.values():
            for row in layer.mask.reshape(-1, layer.mask.shape[-1]).unique(dim=0):
                delta = layer.scaling * (layer.lora_v * row) @ layer.lora_u.t()
                assert float(torch.linalg.norm(delta)) <= tau * (1 + 1e-5)
        model.release()
    assert model.projections.count > 0


def test_forced_plans_route_exactly_those_experts() -> None:
    model = _router(chunk_size=4)
    model.forced_plans = [[Action(2, 1, 2, 1), Action(0, 1, 0, 1)]]
    ids = random_ids(1, 8, seed=5)
    model.prepare(ids, None)
    layer = next(iter(model.lora_layers.values()))
    first, second = layer.mask[0, 0], layer.mask[0, 4]
    assert torch.count_nonzero(first[model.expert_columns(2)]) == 4  # full rank budget
    assert torch.count_nonzero(first[model.expert_columns(0)]) == 0
    assert torch.count_nonzero(second[model.expert_columns(0)]) == 1  # 0.25 of rank 4
    model.release()


def test_experts_start_orthogonal() -> None:
    model = RouterModel(tiny_gpt2(0), RouterBCConfig(rank_dimension=4))
    overlap = model.expert_overlap()
    torch.testing.assert_close(overlap.diagonal(), torch.ones(3, dtype=torch.float64))
    off = overlap - torch.diag(overlap.diagonal())
    assert float(off.abs().max()) < 1e-6


def test_baseline_has_the_experts_total_rank_and_parameters_within_budget() -> None:
    config = RouterBCConfig(rank_dimension=8)
    base = embedded_gpt2()
    router = RouterModel(copy.deepcopy(base), config)
    baseline = build_adapter_model("baseline", config, base, 0, "x.yml")
    first = next(iter(baseline.lora_layers.values()))
    assert (
        first.rank == 24
        and first.scaling == router.lora_layers[next(iter(router.lora_layers))].scaling
    )
    ratio = router.parameter_counts()[1] / baseline.parameter_counts()[1]
    assert 1.0 < ratio <= 1.05, ratio


def test_fresh_experts_get_finite_gradients_through_the_trust_region() -> None:
    """U starts at zero, where ‖ΔW‖_F has an infinite derivative: inside the region the
    projection's scale must be a constant, not tau/‖ΔW‖ clamped (0 * inf = NaN)."""
    model = RouterModel(tiny_gpt2(0), RouterBCConfig(rank_dimension=4, chunk_size=4))
    model.forced_plans = [[Action(1, 1, 2, 1)]] * 2
    ids = random_ids(2, 12, seed=6)
    logits = model(input_ids=ids).logits
    logits.float().pow(2).mean().backward()
    grads = [layer.lora_u.grad for layer in model.lora_layers.values()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_sampled_plans_are_seeded_and_record_the_proposals() -> None:
    model = _router(chunk_size=4, max_plan_length=3, switch_cost=0.0, hysteresis_tau=0.0)
    with torch.no_grad():
        for head in model.policy.heads:
            head.weight.mul_(0.05)  # a spread-out policy, so sampling differs from greedy
    previous, evidence = model.chunk_states(random_ids(1, 40, seed=7))
    runs = []
    for _ in range(2):
        record: list = []
        generator = torch.Generator().manual_seed(11)
        plan = model.plan(previous[0], evidence[0], generator=generator, record=record)
        runs.append((plan.chunk_actions, [r.indices.tolist() for r in record]))
        assert [r.chunk for r in record] == [d.chunk for d in plan.decisions]
        for r, decision in zip(record, plan.decisions, strict=True):
            assert model.space.from_indices(r.indices.tolist()) == decision.proposed
            with torch.no_grad():
                expected = model.policy.log_prob(r.state[None], r.indices[None])
            assert abs(float(expected) - r.log_prob) < 1e-5
    assert runs[0] == runs[1]
    greedy: list = []
    model.plan(previous[0], evidence[0], record=greedy)
    proposals = []
    for seed in range(5):
        record = []
        model.plan(previous[0], evidence[0], torch.Generator().manual_seed(seed), record)
        proposals.append([r.indices.tolist() for r in record])
    assert any(p != [r.indices.tolist() for r in greedy] for p in proposals)
