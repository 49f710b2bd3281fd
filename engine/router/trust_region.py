"""AR1's policy update inside a KL trust region, and the value network's regression step.

One update (TRPO-style line search on a plain gradient direction):
1. surrogate L(θ) = mean(ratio · A) (+ entropy_coef · mean entropy), ratio = exp(logp_θ(a|s)
   − logp_old(a|s)); its gradient g at the current θ0 gives the full step Δ = lr · g.
2. Try θ0 + f·Δ for f = 1, 1/2, 1/4, ... (max_backtracks halvings). A trial is accepted
   when the mean KL(π_old(·|s) ‖ π_new(·|s)) over the batch — the exact divergence of the full
   factorised distributions, summed over heads — is <= kl_bound, and (unless
   require_improvement=False) the surrogate improved.
3. If no trial is accepted, every parameter is restored bit for bit and the result says
   rejected.

Why parameters are written directly instead of through a torch optimizer: the line search
needs to set θ0 + f·Δ for several f and to undo it exactly; an optimizer's internal state
(Adam moments) would be advanced by rejected trials. The gradient is taken with
torch.autograd.grad, so `.grad` fields of the policy are left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engine.router.policy import FactorisedCategorical, MacroPolicy


@dataclass(frozen=True)
class UpdateResult:
    """What one `kl_bounded_update` did (all plain floats, ready for a step_metric row)."""

    accepted: bool
    kl: float  # mean KL of the accepted step, or of the last (smallest) trial if rejected
    step_fraction: float  # f of the accepted step; 0.0 when rejected
    surrogate_before: float
    surrogate_after: float  # equals surrogate_before when rejected (parameters restored)
    n_backtracks: int  # halvings performed before acceptance (max_backtracks if rejected)
    grad_norm: float
    reason: str  # "accepted", "kl_bound", "no_improvement" or "zero_gradient"


def mean_kl(old: FactorisedCategorical, new: FactorisedCategorical) -> torch.Tensor:
    """Batch mean of KL(old ‖ new), each summed over the heads."""
    return old.kl(new).mean()


def _surrogate(
    policy: MacroPolicy,
    states: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    old_log_probs: torch.Tensor,
    entropy_coef: float,
) -> tuple[torch.Tensor, FactorisedCategorical]:
    dist = policy(states)
    ratio = torch.exp(dist.log_prob(actions) - old_log_probs)
    value = (ratio * advantages).mean()
    if entropy_coef:
        value = value + entropy_coef * dist.entropy().mean()
    return value, dist


def kl_bounded_update(
    policy: MacroPolicy,
    states: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    old_log_probs: torch.Tensor | None = None,
    *,
    lr: float,
    kl_bound: float = 0.01,
    max_backtracks: int = 10,
    reference: FactorisedCategorical | None = None,
    entropy_coef: float = 0.0,
    require_improvement: bool = True,
) -> UpdateResult:
    """One KL-bounded policy-gradient step on a batch of decisions (see module doc).

    states (N, state_dim), actions (N, 4) head indices, advantages (N,) (already normalised
    if wanted). `old_log_probs` (N,) are the behaviour policy's log-probabilities of the
    actions (the importance-ratio denominator); None uses the policy as it is now, so the
    ratio starts at 1. `reference` is the distribution the KL is measured against; None uses
    the policy as it is now (each update moves at most kl_bound). Pass the behaviour policy's
    distribution to bound the drift over several updates on one batch.
    """
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0 (got {lr})")
    if not (math.isfinite(kl_bound) and kl_bound >= 0):
        raise ValueError(f"kl_bound must be finite and >= 0 (got {kl_bound})")
    if max_backtracks < 0:
        raise ValueError(f"max_backtracks must be >= 0 (got {max_backtracks})")
    n = states.shape[0]
    if actions.shape[0] != n or advantages.shape != (n,):
        raise ValueError(
            f"batch sizes differ: states {tuple(states.shape)}, actions {tuple(actions.shape)}, "
            f"advantages {tuple(advantages.shape)}"
        )
    advantages = advantages.detach()
    params = [p for p in policy.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]

    with torch.no_grad():
        current = policy(states)
        if old_log_probs is None:
            old_log_probs = current.log_prob(actions)
        old_log_probs = old_log_probs.detach()
        if reference is None:
            reference = current
        reference = reference.detach()

    surrogate, _ = _surrogate(policy, states, actions, advantages, old_log_probs, entropy_coef)
    grads = torch.autograd.grad(surrogate, params, allow_unused=True)
    direction = [
        torch.zeros_like(p) if g is None else lr * g for p, g in zip(params, grads, strict=True)
    ]
    before = float(surrogate.detach())
    grad_norm = math.sqrt(sum(float((g * g).sum()) for g in grads if g is not None))

    def restore(reason: str, kl: float, backtracks: int) -> UpdateResult:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        return UpdateResult(False, kl, 0.0, before, before, backtracks, grad_norm, reason)

    if grad_norm == 0.0 or not math.isfinite(grad_norm):
        return restore("zero_gradient", 0.0, 0)

    kl_value, reason = math.nan, "kl_bound"
    fraction = 1.0
    for backtrack in range(max_backtracks + 1):
        if backtrack:
            fraction *= 0.5
        with torch.no_grad():
            for p, s, d in zip(params, saved, direction, strict=True):
                p.copy_(s + fraction * d)
            after_value, new = _surrogate(
                policy, states, actions, advantages, old_log_probs, entropy_coef
            )
            kl_value = float(mean_kl(reference, new))
            after = float(after_value)
        if not kl_value <= kl_bound:  # also catches a NaN/inf KL from an exploding step
            reason = "kl_bound"
            continue
        if require_improvement and not after > before:
            reason = "no_improvement"
            continue
        return UpdateResult(
            True, kl_value, fraction, before, after, backtrack, grad_norm, "accepted"
        )
    return restore(reason, kl_value, max_backtracks)


@dataclass(frozen=True)
class ValueUpdateResult:
    loss_before: float
    loss_after: float


def value_update(
    value_net: nn.Module,
    optimizer: torch.optim.Optimizer,
    states: torch.Tensor,
    returns: torch.Tensor,
    steps: int = 1,
) -> ValueUpdateResult:
    """Regress V(s) on the GAE returns with MSE for `steps` optimizer steps (full batch).

    The value network is the critic: no trust region is needed (its errors only affect
    advantage variance), so a plain optimizer is fine here.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1 (got {steps})")
    returns = returns.detach()
    first = None
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(value_net(states), returns)
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    with torch.no_grad():
        last = float(F.mse_loss(value_net(states), returns))
    return ValueUpdateResult(first if first is not None else last, last)
