"""AR0: behavioural cloning of oracle routing traces.

The oracle scores every expert on each chunk and names the best action; the policy learns it
with one cross-entropy per head. A head the oracle leaves undefined for a row (e.g. it picks
the expert but has no opinion on the bias scale) carries `UNDEFINED` (-1) and is left out of
that head's loss, rather than being forced onto an arbitrary class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.router.actions import HEADS, UNDEFINED
from engine.router.policy import MacroPolicy


def bc_loss(
    policy: MacroPolicy,
    states: torch.Tensor,
    actions: torch.Tensor,
    head_weights: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """Sum over heads of the mean cross-entropy against the oracle's defined entries.

    Each head is averaged over its own defined rows, so a head that is rarely defined is not
    drowned out by the others; a head with no defined row in the batch adds 0.
    """
    logits = policy.head_logits(states)
    if actions.shape != (states.shape[0], len(logits)):
        raise ValueError(
            f"actions: expected ({states.shape[0]}, {len(logits)}) (got {tuple(actions.shape)})"
        )
    weights = head_weights if head_weights is not None else (1.0,) * len(logits)
    if len(weights) != len(logits):
        raise ValueError(f"head_weights: expected {len(logits)} values (got {len(weights)})")
    total = logits[0].new_zeros(())
    for h, (lg, w) in enumerate(zip(logits, weights, strict=True)):
        target = actions[:, h].long()
        if bool((target >= lg.shape[-1]).any()) or bool((target < UNDEFINED).any()):
            raise ValueError(f"head {HEADS[h]}: oracle index out of range")
        if bool((target != UNDEFINED).any()):
            total = total + w * F.cross_entropy(lg, target, ignore_index=UNDEFINED)
    return total


@torch.no_grad()
def greedy_accuracy(
    policy: MacroPolicy, states: torch.Tensor, actions: torch.Tensor
) -> dict[str, float]:
    """Per-head share of defined oracle entries the greedy policy reproduces (NaN if none)."""
    predicted = policy.greedy(states)
    out = {}
    for h, name in enumerate(HEADS[: predicted.shape[1]]):
        defined = actions[:, h] != UNDEFINED
        hits = (predicted[:, h] == actions[:, h]) & defined
        out[name] = float(hits.sum()) / int(defined.sum()) if bool(defined.any()) else float("nan")
    return out


@dataclass(frozen=True)
class BCResult:
    losses: list[float]  # per optimisation step
    accuracy: dict[str, float]  # greedy accuracy per head on the training set after fitting


def fit_bc(
    policy: MacroPolicy,
    states: torch.Tensor,
    actions: torch.Tensor,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
) -> BCResult:
    """Fit the policy to oracle actions with Adam; returns losses and training accuracy.

    `seed` drives minibatch sampling through a private generator (the global RNG is left
    alone, so callers' other draws are unaffected); the policy's initialisation is the
    caller's (seed before building it). `batch_size=None` uses the full batch each step.
    """
    if steps < 1 or not lr > 0:
        raise ValueError(f"steps must be >= 1 and lr > 0 (got {steps}, {lr})")
    n = states.shape[0]
    if n == 0:
        raise ValueError("no oracle decisions to clone")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    policy.train()
    for _ in range(steps):
        if batch_size is None or batch_size >= n:
            batch_states, batch_actions = states, actions
        else:
            rows = torch.randperm(n, generator=generator)[:batch_size]
            batch_states, batch_actions = states[rows], actions[rows]
        optimizer.zero_grad(set_to_none=True)
        loss = bc_loss(policy, batch_states, batch_actions)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    policy.eval()
    return BCResult(losses, greedy_accuracy(policy, states, actions))
