"""Router inference caches (masks and V-folded factors per layer and setting): they change
no result, follow every weight update, and stay out of training's graph."""

from __future__ import annotations

import pytest
import torch

from engine.router.actions import Action
from engine.variants.router.config import RouterBCConfig
from engine.variants.router.model import RouterModel
from tests.engine.variants.helpers import random_ids, tiny_gpt2


def _router(**overrides) -> RouterModel:
    config = RouterBCConfig(
        rank_dimension=4, chunk_size=4, switch_cost=0.0, hysteresis_tau=0.0, **overrides
    )
    torch.manual_seed(0)
    model = RouterModel(tiny_gpt2(0), config)
    with torch.no_grad():  # trained-looking experts and a decisive, input-dependent policy
        for layer in model.lora_layers.values():
            layer.lora_u.normal_(0, 0.5)
        for head in model.policy.heads:
            head.weight.normal_(0, 3.0)
    return model.eval()


def _decode(model: RouterModel, prompt: torch.Tensor, steps: int) -> dict:
    """Greedy decoding with a routing cache: every step's logits, the plan and the trace."""
    routing: dict = {"trace": []}
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True, routing_cache=routing)
        logits, past, context = [out.logits], out.cache, prompt
        for _ in range(steps):
            step = out.logits[:, -1:].argmax(-1)
            out = model(
                input_ids=step,
                cache=past,
                context_ids=context,
                use_cache=True,
                routing_cache=routing,
            )
            logits.append(out.logits)
            past, context = out.cache, torch.cat([context, step], 1)
    return {
        "logits": torch.cat(logits, 1),
        "plan": routing["plans"][0],
        "trace": torch.cat(routing["trace"], 1),
    }


def test_cached_inference_is_bitwise_the_uncached_one_across_chunks_and_prompts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _router(max_plan_length=4, trust_region_tau=0.3)
    prompts = [random_ids(1, n, seed=n) for n in (3, 6, 9, 13)]  # 24 steps: 6+ chunks each
    cached = [_decode(model, p, 24) for p in prompts] + [_decode(model, prompts[0], 24)]
    assert len({a for run in cached for a in run["plan"].chunk_actions}) > 2  # real switches
    monkeypatch.setattr(RouterModel, "_layer_cache", lambda self, name: None)
    fresh = [_decode(model, p, 24) for p in prompts + prompts[:1]]
    for got, want in zip(cached, fresh, strict=True):
        assert torch.equal(got["logits"], want["logits"])
        assert got["plan"] == want["plan"] and torch.equal(got["trace"], want["trace"])


def test_the_cache_follows_in_place_updates_state_dicts_and_optimiser_steps() -> None:
    model = _router(trust_region_tau=0.3)
    name, layer = next(iter(model.lora_layers.items()))
    action = Action(1, 1, 2, 2)

    def check() -> torch.Tensor:
        with torch.no_grad():
            mask = model.action_mask(action, name)
            assert torch.equal(mask, model._compute_action_mask(action, name))
            folded = model._folded_v(action, name)
            assert torch.equal(folded, layer.lora_v * mask)
        return mask

    first = check()
    with torch.no_grad():
        layer.lora_u.mul_(0.1)  # in place, as an optimiser does
    second = check()
    assert not torch.equal(first, second)
    state = model.trainable_state_dict()
    state[f"base_model.{name}.lora_u"] = state[f"base_model.{name}.lora_u"] * 3
    model.load_trainable_state_dict(state)
    third = check()
    assert not torch.equal(second, third)
    model.forced_plans = [[action]]
    optimiser = torch.optim.SGD([layer.lora_u, layer.lora_v], lr=0.5)
    model(input_ids=random_ids(1, 8, seed=2)).logits.pow(2).mean().backward()
    optimiser.step()
    assert not torch.equal(third, check())


def test_training_masks_stay_in_the_graph_after_cached_inference() -> None:
    model = _router(trust_region_tau=0.05)  # every composition projected: scale = tau/‖ΔW‖
    model.forced_plans = [[Action(2, 1, 2, 1)]]
    ids = random_ids(1, 8, seed=3)
    with torch.no_grad():
        model(input_ids=ids)
    name = next(iter(model.lora_layers))
    mask = model.action_mask(Action(2, 1, 2, 1), name)
    assert mask.requires_grad  # computed afresh in the graph, not the cached no-grad mask
    model(input_ids=ids).logits.pow(2).mean().backward()
    grads = [layer.lora_u.grad for layer in model.lora_layers.values()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


def test_projections_are_counted_once_per_computed_mask() -> None:
    model = _router(trust_region_tau=0.05)
    model.forced_plans = [[Action(0, 1, 2, 1), Action(1, 1, 0, 0)]]
    ids = random_ids(1, 8, seed=4)  # two chunks, two settings
    n_layers = len(model.lora_layers)
    with torch.no_grad():
        model(input_ids=ids)
        assert model.projections.total == 2 * n_layers
        assert model.projections.count == 2 * n_layers  # tau is tiny: all projected
        model(input_ids=ids)  # same weights, same settings: nothing computed again
        assert model.projections.total == 2 * n_layers
    model(input_ids=ids)  # training computes (and counts) every mask on every forward
    assert model.projections.total == 4 * n_layers
