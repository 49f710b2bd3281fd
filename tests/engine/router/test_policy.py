"""Macro-policy: factorised distribution, its log-prob/entropy/KL against torch.distributions."""

import pytest
import torch

from engine.router.actions import ActionSpace
from engine.router.policy import FactorisedCategorical, MacroPolicy, ValueNetwork

SPACE = ActionSpace(n_experts=3)
STATE_DIM = 10


def policy(seed: int = 0, **kwargs) -> MacroPolicy:
    torch.manual_seed(seed)
    return MacroPolicy(SPACE, STATE_DIM, hidden=16, **kwargs)


def states(n: int = 7, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, STATE_DIM, generator=torch.Generator().manual_seed(seed))


def test_one_head_per_component():
    dist = policy()(states())
    assert dist.head_sizes == SPACE.head_sizes
    assert all(
        lp.shape == (7, size) for lp, size in zip(dist.log_probs, SPACE.head_sizes, strict=True)
    )


def test_log_prob_entropy_match_torch_categoricals():
    p, s = policy(head_init_scale=1.0), states()
    dist = p(s)
    actions = p.sample(s, torch.Generator().manual_seed(3))
    heads = dist.heads()
    expected_lp = sum(h.log_prob(actions[:, i]) for i, h in enumerate(heads))
    expected_ent = sum(h.entropy() for h in heads)
    torch.testing.assert_close(p.log_prob(s, actions), expected_lp)
    torch.testing.assert_close(p.entropy(s), expected_ent)


def test_kl_matches_torch_kl_divergence_summed_over_heads():
    s = states()
    old, new = policy(0, head_init_scale=1.0)(s), policy(1, head_init_scale=1.0)(s)
    expected = sum(
        torch.distributions.kl_divergence(a, b)
        for a, b in zip(old.heads(), new.heads(), strict=True)
    )
    torch.testing.assert_close(old.kl(new), expected)
    assert bool((old.kl(new) > 0).all())
    torch.testing.assert_close(old.kl(old), torch.zeros(7), atol=1e-6, rtol=0)


def test_kl_with_an_underflowed_class_is_finite():
    p = FactorisedCategorical([torch.tensor([[0.0, -1e9]])])  # second class has p = 0
    q = FactorisedCategorical([torch.tensor([[0.0, 0.0]])])
    torch.testing.assert_close(p.kl(q), torch.tensor([torch.log(torch.tensor(2.0)).item()]))
    assert torch.isfinite(p.entropy()).all()


def test_initial_policy_is_near_uniform():
    entropy = policy().entropy(states())
    max_entropy = sum(torch.log(torch.tensor(float(n))) for n in SPACE.head_sizes)
    assert bool((entropy > 0.999 * max_entropy).all())


def test_sampling_is_seeded_and_in_range():
    p, s = policy(head_init_scale=1.0), states(200)
    a = p.sample(s, torch.Generator().manual_seed(5))
    b = p.sample(s, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert a.shape == (200, 4)
    for h, size in enumerate(SPACE.head_sizes):
        assert 0 <= int(a[:, h].min()) and int(a[:, h].max()) < size
    assert len(SPACE.from_tensor(a)) == 200


def test_sampling_follows_the_distribution():
    dist = FactorisedCategorical([torch.log(torch.tensor([[0.7, 0.2, 0.1]])).expand(20000, 3)])
    draws = dist.sample(torch.Generator().manual_seed(0))[:, 0]
    freq = torch.bincount(draws, minlength=3).float() / 20000
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.015, rtol=0)


def test_greedy_is_argmax_of_each_head():
    p, s = policy(head_init_scale=1.0), states()
    greedy = p.greedy(s)
    logits = p.head_logits(s)
    assert greedy.tolist() == torch.stack([lg.argmax(-1) for lg in logits], -1).tolist()


def test_log_prob_rejects_out_of_range_actions():
    p, s = policy(), states(2)
    with pytest.raises(ValueError):
        p.log_prob(s, torch.tensor([[3, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError):
        p.log_prob(s, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError):
        p(torch.zeros(2, STATE_DIM + 1))


def test_value_network_returns_one_scalar_per_state():
    torch.manual_seed(0)
    value = ValueNetwork(STATE_DIM, hidden=8)
    out = value(states(5))
    assert out.shape == (5,)
    assert torch.isfinite(out).all()
