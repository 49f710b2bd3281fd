"""Generalised advantage estimation over a padded batch of variable-length episodes.

An episode is one sequence's chain of router decisions (at most a handful), so episodes in a
batch differ in length; they are right-padded to T steps with a boolean mask that is True on a
prefix of each row. With δ_t = r_t + γ V_{t+1} − V_t (V after an episode's last step is its
bootstrap value, 0 for a finished sequence):

    A_t = δ_t + γλ A_{t+1},        returns_t = A_t + V_t

λ = 1 gives Monte-Carlo returns minus the value (unbiased, high variance); λ = 0 gives the
one-step TD error (low variance, biased by V). Padded positions are 0 in both outputs, so a
masked mean over them is never polluted.
"""

from __future__ import annotations

import torch


def _check(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if rewards.ndim != 2 or values.shape != rewards.shape or mask.shape != rewards.shape:
        raise ValueError(
            f"rewards, values and mask must all be (B, T) (got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)}, {tuple(mask.shape)})"
        )
    mask = mask.bool()
    if rewards.shape[1] > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("mask must be True on a prefix of each row (right padding only)")
    return mask


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
    last_values: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), both (B, T), zero where `mask` is False.

    `last_values` (B,) bootstraps episodes cut short (the value of the state after the last
    valid step); None means every episode ended (bootstrap 0), the router's usual case.
    Values are treated as constants (computed under no_grad).
    """
    if not 0.0 <= gamma <= 1.0 or not 0.0 <= lam <= 1.0:
        raise ValueError(f"gamma and lambda must be in [0, 1] (got {gamma}, {lam})")
    mask = _check(rewards, values, mask)
    rewards, values = rewards.detach(), values.detach()
    batch, steps = rewards.shape
    if last_values is None:
        last_values = torch.zeros(batch, dtype=values.dtype, device=values.device)
    elif last_values.shape != (batch,):
        raise ValueError(f"last_values: expected ({batch},) (got {tuple(last_values.shape)})")
    maskf = mask.to(values.dtype)
    advantages = torch.zeros_like(values)
    next_advantage = torch.zeros(batch, dtype=values.dtype, device=values.device)
    for t in reversed(range(steps)):
        if t + 1 < steps:
            has_next = mask[:, t + 1]
            next_value = torch.where(has_next, values[:, t + 1], last_values.detach())
            carry = next_advantage * maskf[:, t + 1]  # no advantage flows back from padding
        else:
            next_value, carry = last_values.detach(), torch.zeros_like(next_advantage)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = (delta + gamma * lam * carry) * maskf[:, t]
        advantages[:, t] = advantage
        next_advantage = advantage
    returns = (advantages + values) * maskf
    return advantages, returns


def normalize_advantages(
    advantages: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Zero-mean, unit-std advantages over the valid entries (padding stays 0).

    Keeps the policy-gradient step size independent of the reward scale, so one learning
    rate (and one KL bound) works across tasks. With fewer than two valid entries only the
    mean is removed.
    """
    mask = mask.bool()
    valid = advantages[mask]
    if valid.numel() == 0:
        return torch.zeros_like(advantages)
    centred = advantages - valid.mean()
    if valid.numel() > 1:
        centred = centred / (valid.std() + eps)
    return torch.where(mask, centred, torch.zeros_like(advantages))
