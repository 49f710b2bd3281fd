"""Hysteresis: an expert switch must pay for itself.

Why: every expert switch moves the adapter to another subspace mid-sequence; tokens after the
boundary see a different model than those before it, and a policy that flips on noise would
blow the switch-rate gate (<= 20% of chunk boundaries). A switch is therefore only taken when
its estimated gain exceeds a fixed switching cost plus a margin tau:

    switch  iff  gain > switch_cost + tau      (strict: a gain exactly at the threshold keeps)

(tau here is the hysteresis margin, unrelated to the composition's trust-region radius.)

Decisions (documented because the issue leaves them open):
- Only *expert* changes are gated. A proposal for the same expert may change its rank budget,
  bias scale and span freely: that stays in the same subspace, its size is bounded by the
  trust-region projection anyway, and the switch-rate gate counts expert switches. Such a
  change still starts a new plan step, so the plan-length cap bounds it.
- When a switch is refused, the previous action is kept unchanged, span included (it simply
  runs for another span of chunks), as if the router had re-chosen it.
- The first decision of a sequence (no previous action) is free.
- `gain` is an estimate supplied by the caller, in the same units as switch_cost + tau.
  `expert_margin_gain` gives the default estimate: the policy's probability margin
  p(proposed expert) - p(previous expert) from the expert head, in [-1, 1], so
  switch_cost + tau must stay below 1 or no switch can ever happen. A value-based estimate
  (V(s, proposed) - V(s, previous)) can be passed instead.
"""

from __future__ import annotations

import math

import torch

from engine.router.actions import Action


def switch_threshold(switch_cost: float, tau: float) -> float:
    """The gain an expert switch has to exceed (validated: both terms finite and >= 0)."""
    for name, value in (("switch_cost", switch_cost), ("tau", tau)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0 (got {value})")
    return switch_cost + tau


def keep_or_switch(
    prev: Action | None, proposed: Action, gain: float, switch_cost: float, tau: float
) -> Action:
    """The action to apply: `proposed`, unless it changes expert without enough gain.

    Returns `prev` itself (same object) when the switch is refused, so `result is prev` tells
    a caller that hysteresis vetoed the proposal.
    """
    threshold = switch_threshold(switch_cost, tau)
    if prev is None or proposed.expert == prev.expert:
        return proposed
    if math.isnan(gain):
        raise ValueError("gain is NaN")
    return proposed if gain > threshold else prev


def expert_margin_gain(expert_probs: torch.Tensor, prev: Action | None, proposed: Action) -> float:
    """p(proposed.expert) - p(prev.expert) under the policy's expert head for one state.

    `expert_probs` is the (n_experts,) expert-head distribution at this boundary (e.g.
    `policy(state).probs(0)[i]`). With no previous action the gain is +inf (first decision).
    """
    if expert_probs.ndim != 1:
        raise ValueError(f"expert_probs: expected (n_experts,) (got {tuple(expert_probs.shape)})")
    if prev is None:
        return math.inf
    return float(expert_probs[proposed.expert] - expert_probs[prev.expert])
