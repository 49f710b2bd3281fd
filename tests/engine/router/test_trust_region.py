"""AR1 update: the KL bound holds after every accepted step, rejection restores parameters."""

import pytest
import torch

from engine.router.actions import ActionSpace
from engine.router.policy import MacroPolicy, ValueNetwork
from engine.router.trust_region import kl_bounded_update, mean_kl, value_update

SPACE = ActionSpace(n_experts=4)
STATE_DIM = 12


def setup(seed: int, n: int = 96):
    torch.manual_seed(seed)
    policy = MacroPolicy(SPACE, STATE_DIM, hidden=16, head_init_scale=1.0)
    g = torch.Generator().manual_seed(seed + 100)
    states = torch.randn(n, STATE_DIM, generator=g)
    actions = policy.sample(states, g)
    advantages = torch.randn(n, generator=g)
    return policy, states, actions, advantages


def snapshot(policy):
    return [p.detach().clone() for p in policy.parameters()]


def kl_reference(old_logits, new_logits):
    """Mean over states of sum over heads of torch's own categorical KL."""
    total = sum(
        torch.distributions.kl_divergence(
            torch.distributions.Categorical(logits=a), torch.distributions.Categorical(logits=b)
        )
        for a, b in zip(old_logits, new_logits, strict=True)
    )
    return total.mean().item()


@pytest.mark.parametrize("seed", range(4))
def test_kl_bound_holds_after_every_accepted_update(seed):
    policy, states, actions, advantages = setup(seed)
    bound = 0.01
    backtracked = accepted = 0
    for _ in range(6):
        with torch.no_grad():
            old_logits = policy.head_logits(states)
        result = kl_bounded_update(policy, states, actions, advantages, lr=20.0, kl_bound=bound)
        with torch.no_grad():
            measured = kl_reference(old_logits, policy.head_logits(states))
        if result.accepted:
            accepted += 1
            assert measured <= bound
            assert result.kl == pytest.approx(measured, rel=1e-4, abs=1e-7)
            assert result.step_fraction == 0.5**result.n_backtracks
            assert result.surrogate_after > result.surrogate_before
        else:
            assert measured == 0.0
        backtracked += result.n_backtracks > 0
    assert accepted >= 1
    assert backtracked >= 1  # the large lr really exercised the line search


def test_kl_matches_torch_kl_divergence_summed_over_heads():
    policy, states, actions, advantages = setup(7)
    with torch.no_grad():
        old = policy(states)
        old_logits = policy.head_logits(states)
    result = kl_bounded_update(policy, states, actions, advantages, lr=2.0, kl_bound=1.0)
    assert result.accepted
    with torch.no_grad():
        new = policy(states)
        expected = kl_reference(old_logits, policy.head_logits(states))
    assert mean_kl(old, new).item() == pytest.approx(expected, rel=1e-5)
    assert result.kl == pytest.approx(expected, rel=1e-5)
    assert result.kl > 0


def test_rejected_update_leaves_parameters_bit_identical():
    policy, states, actions, advantages = setup(1)
    before = snapshot(policy)
    result = kl_bounded_update(
        policy, states, actions, advantages, lr=100.0, kl_bound=1e-12, max_backtracks=3
    )
    assert not result.accepted and result.reason == "kl_bound"
    assert result.n_backtracks == 3 and result.step_fraction == 0.0
    assert result.surrogate_after == result.surrogate_before
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
    assert all(p.grad is None for p in policy.parameters())  # .grad fields left alone


def test_exploding_step_never_leaves_nan_parameters():
    policy, states, actions, advantages = setup(2)
    result = kl_bounded_update(
        policy, states, actions, advantages, lr=1e12, kl_bound=0.01, max_backtracks=4
    )
    assert not result.accepted
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_tiny_lr_improves_the_surrogate_without_backtracking():
    policy, states, actions, advantages = setup(3)
    result = kl_bounded_update(
        policy, states, actions, advantages, lr=1e-2, require_improvement=False
    )
    assert result.accepted and result.n_backtracks == 0 and result.step_fraction == 1.0
    assert result.surrogate_after > result.surrogate_before
    assert 0 < result.kl < 0.01


def test_ratio_uses_behaviour_log_probs():
    policy, states, actions, advantages = setup(4)
    with torch.no_grad():
        behaviour = policy.log_prob(states, actions) + 0.1  # a slightly different old policy
        expected = (torch.exp(policy.log_prob(states, actions) - behaviour) * advantages).mean()
    result = kl_bounded_update(policy, states, actions, advantages, behaviour, lr=1e-3)
    assert result.surrogate_before == pytest.approx(expected.item(), rel=1e-6)


def test_zero_advantages_are_not_a_step():
    policy, states, actions, _ = setup(5)
    before = snapshot(policy)
    result = kl_bounded_update(policy, states, actions, torch.zeros(len(states)), lr=1.0)
    assert not result.accepted and result.reason == "zero_gradient"
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))


def test_repeated_updates_learn_a_contextual_bandit():
    """Reward 1 when the expert matches the sign pattern of the state: the policy must learn it."""
    torch.manual_seed(0)
    policy = MacroPolicy(SPACE, STATE_DIM, hidden=32)
    g = torch.Generator().manual_seed(1)
    states = torch.randn(256, STATE_DIM, generator=g)
    best = (states[:, 0] > 0).long() * 2 + (states[:, 1] > 0).long()

    def mean_reward():
        with torch.no_grad():
            return policy(states).probs(0).gather(1, best[:, None]).mean().item()

    start = mean_reward()
    for _ in range(40):
        actions = policy.sample(states, g)
        rewards = (actions[:, 0] == best).float()
        advantages = rewards - rewards.mean()
        result = kl_bounded_update(policy, states, actions, advantages, lr=5.0, kl_bound=0.02)
        assert not result.accepted or result.kl <= 0.02
    assert start == pytest.approx(0.25, abs=0.02)
    assert mean_reward() > 0.6


def test_value_update_regresses_on_returns():
    torch.manual_seed(0)
    value = ValueNetwork(STATE_DIM, hidden=16)
    g = torch.Generator().manual_seed(2)
    states = torch.randn(64, STATE_DIM, generator=g)
    returns = states[:, 0] * 2.0 - 1.0
    optimizer = torch.optim.Adam(value.parameters(), lr=1e-2)
    result = value_update(value, optimizer, states, returns, steps=150)
    assert result.loss_after < 0.1 * result.loss_before


def test_invalid_arguments():
    policy, states, actions, advantages = setup(6)
    with pytest.raises(ValueError):
        kl_bounded_update(policy, states, actions, advantages, lr=0.0)
    with pytest.raises(ValueError):
        kl_bounded_update(policy, states, actions, advantages[:-1], lr=1.0)
    with pytest.raises(ValueError):
        kl_bounded_update(policy, states, actions, advantages, lr=1.0, max_backtracks=-1)
