"""GAE on padded variable-length episodes against a naive loop and the lambda = 0/1 cases."""

import pytest
import torch

from engine.router.gae import gae, normalize_advantages


def padded_batch(seed: int, lengths: list[int], steps: int):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(len(lengths), steps, generator=g, dtype=torch.float64)
    values = torch.randn(len(lengths), steps, generator=g, dtype=torch.float64)
    mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
    # garbage in the padding must not leak into the valid steps
    rewards = torch.where(mask, rewards, torch.full_like(rewards, 1e6))
    values = torch.where(mask, values, torch.full_like(values, -1e6))
    return rewards, values, mask


def naive_gae(rewards, values, gamma, lam, bootstrap=0.0):
    """Textbook per-episode loop over Python lists (one episode, no padding)."""
    n = len(rewards)
    advantages = [0.0] * n
    running = 0.0
    for t in reversed(range(n)):
        next_value = values[t + 1] if t + 1 < n else bootstrap
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
    return advantages


LENGTHS = [5, 1, 3, 0, 5, 2]


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.5), (1.0, 1.0), (0.5, 0.0)])
def test_matches_naive_per_episode_loop(gamma, lam):
    rewards, values, mask = padded_batch(0, LENGTHS, 5)
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    for b, n in enumerate(LENGTHS):
        expected = naive_gae(rewards[b, :n].tolist(), values[b, :n].tolist(), gamma, lam)
        torch.testing.assert_close(advantages[b, :n], torch.tensor(expected, dtype=torch.float64))
        torch.testing.assert_close(returns[b, :n], advantages[b, :n] + values[b, :n])
    assert bool((advantages[~mask] == 0).all()) and bool((returns[~mask] == 0).all())


def test_lambda_one_is_monte_carlo_return_minus_value():
    rewards, values, mask = padded_batch(1, LENGTHS, 5)
    gamma = 0.9
    advantages, returns = gae(rewards, values, mask, gamma, 1.0)
    for b, n in enumerate(LENGTHS):
        for t in range(n):
            mc = sum(gamma ** (k - t) * rewards[b, k].item() for k in range(t, n))
            assert returns[b, t].item() == pytest.approx(mc, rel=1e-10, abs=1e-10)
            assert advantages[b, t].item() == pytest.approx(mc - values[b, t].item(), abs=1e-10)


def test_lambda_zero_is_one_step_td_error():
    rewards, values, mask = padded_batch(2, LENGTHS, 5)
    gamma = 0.8
    advantages, _ = gae(rewards, values, mask, gamma, 0.0)
    for b, n in enumerate(LENGTHS):
        for t in range(n):
            next_value = values[b, t + 1].item() if t + 1 < n else 0.0
            td = rewards[b, t].item() + gamma * next_value - values[b, t].item()
            assert advantages[b, t].item() == pytest.approx(td, abs=1e-10)


def test_bootstrap_value_for_truncated_episodes():
    rewards, values, mask = padded_batch(3, [4, 2], 4)
    last = torch.tensor([0.7, -1.3], dtype=torch.float64)
    advantages, _ = gae(rewards, values, mask, 0.95, 0.9, last_values=last)
    for b, n in enumerate([4, 2]):
        expected = naive_gae(
            rewards[b, :n].tolist(), values[b, :n].tolist(), 0.95, 0.9, bootstrap=last[b].item()
        )
        torch.testing.assert_close(advantages[b, :n], torch.tensor(expected, dtype=torch.float64))


def test_mask_must_be_a_prefix_and_shapes_match():
    rewards = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        gae(rewards, rewards, torch.tensor([[True, False, True], [True, True, True]]), 0.9, 0.9)
    with pytest.raises(ValueError):
        gae(rewards, torch.zeros(2, 4), torch.ones(2, 3, dtype=torch.bool), 0.9, 0.9)
    with pytest.raises(ValueError):
        gae(rewards, rewards, torch.ones(2, 3, dtype=torch.bool), 1.1, 0.9)


def test_normalize_advantages_over_valid_entries_only():
    rewards, values, mask = padded_batch(4, LENGTHS, 5)
    advantages, _ = gae(rewards, values, mask, 0.99, 0.95)
    normed = normalize_advantages(advantages, mask)
    assert normed[mask].mean().item() == pytest.approx(0.0, abs=1e-12)
    assert normed[mask].std().item() == pytest.approx(1.0, rel=1e-6)
    assert bool((normed[~mask] == 0).all())
    empty = torch.zeros(2, 3, dtype=torch.bool)
    assert bool((normalize_advantages(advantages[:2, :3], empty) == 0).all())
