"""What keeps the shadow adapter from forgetting while it learns online.

- **EWC** (Kirkpatrick et al., 2017): (λ/2) Σᵢ Fᵢ (θᵢ − θ*ᵢ)², with θ* the deployed weights
  and F the diagonal of the empirical Fisher information on the history part: parameters
  the history's answers depend on are held near θ*, the others are free to move.
- **Proximal**: (λ/2) Σᵢ (θᵢ − θ*ᵢ)², the same pull with every parameter weighted alike (no
  Fisher to estimate, so no history data is needed at update time).

Only trainable parameters (the adapter's) enter; the frozen base never moves.

The Fisher is estimated from *per-example* gradients (squared, then averaged): squaring a
mini-batch's mean gradient would estimate (E g)² instead of E[g²], which shrinks toward zero as
the batch grows, and with it the penalty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import torch
from torch import nn

Params = dict[str, torch.Tensor]


def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def snapshot(model: nn.Module) -> Params:
    """Detached copies of the trainable weights (the anchor θ*, or a checkpoint)."""
    return {name: p.detach().clone() for name, p in trainable(model).items()}


def diagonal_fisher(
    model: nn.Module,
    examples: Iterable[object],
    loss_of: Callable[[nn.Module, object], torch.Tensor],
) -> Params:
    """E[g²] per trainable parameter, g the gradient of one example's loss (`loss_of(model,
    example)`: the negative log-likelihood of its reference answer). Leaves the model's
    gradients cleared and its mode as it was."""
    params = trainable(model)
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    n = 0
    for example in examples:
        model.zero_grad(set_to_none=True)
        loss_of(model, example).backward()
        for name, p in params.items():
            if p.grad is not None:
                totals[name] += p.grad.detach() ** 2
        n += 1
    model.zero_grad(set_to_none=True)
    if n == 0:
        raise ValueError("the Fisher needs at least one example")
    return {name: total / n for name, total in totals.items()}


class AnchorPenalty:
    """(weight/2) Σ importance · (θ − θ*)², summed over the anchored parameters.

    `importance` None is the proximal penalty (every weight 1)."""

    def __init__(self, anchor: Params, weight: float, importance: Params | None = None) -> None:
        if weight < 0:
            raise ValueError(f"penalty weight must be >= 0 (got {weight})")
        if importance is not None and set(importance) != set(anchor):
            raise ValueError("the Fisher and the anchor name different parameters")
        self.anchor = anchor
        self.weight = weight
        self.importance = importance

    def __call__(self, model: nn.Module) -> torch.Tensor:
        params = trainable(model)
        missing = set(self.anchor) - set(params)
        if missing:
            raise ValueError(f"the model lacks anchored parameters: {sorted(missing)[:3]}")
        total = torch.zeros((), device=next(iter(params.values())).device)
        for name, theta_star in self.anchor.items():
            diff = params[name] - theta_star
            weighted = diff**2 if self.importance is None else self.importance[name] * diff**2
            total = total + weighted.sum()
        return 0.5 * self.weight * total


def make_penalty(
    kind: Literal["ewc", "prox"],
    model: nn.Module,
    weight: float,
    fisher: Params | None = None,
) -> AnchorPenalty:
    """The shadow's penalty anchored at `model`'s current (deployed) weights."""
    if kind == "ewc":
        if fisher is None:
            raise ValueError("EWC needs the Fisher estimated on the history part")
        return AnchorPenalty(snapshot(model), weight, fisher)
    if kind == "prox":
        return AnchorPenalty(snapshot(model), weight)
    raise ValueError(f"unknown regulariser {kind!r}; known: ewc, prox")


def restore(model: nn.Module, weights: Params) -> None:
    """Put `weights` (a `snapshot`) back into the model, exactly (rollback)."""
    params = trainable(model)
    if set(params) != set(weights):
        raise ValueError("the checkpoint and the model name different parameters")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
