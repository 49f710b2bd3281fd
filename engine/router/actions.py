"""The router's macro-action space: which expert, for how many chunks, at what rank and bias.

Why a factorised space: the policy has one categorical head per component (expert, span, rank
budget, bias scale), so the joint space (here 4 x 4 x 3 x 3 per expert count) never has to be
enumerated by a softmax, and behavioural cloning can supervise a component on its own (an
oracle may name the expert but leave the rank budget undefined).

Representation: an `Action` holds the expert id, the span as a number of chunks (a plan
reads it directly) and *indices* into the space's rank-budget and bias-scale tuples (floats
are not good dictionary keys or class labels). `ActionSpace` translates between an `Action`,
its per-head class indices (what the policy's heads predict), one flat integer (a compact
label for logs and counting) and a one-hot feature vector (the "previous action" part of
the policy's state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

HEADS: tuple[str, ...] = ("expert", "span", "rank_budget", "bias_scale")
"""Head order everywhere: the columns of an action tensor and the policy's head list."""

UNDEFINED = -1
"""Class index for a head an oracle leaves undefined; BC ignores it (cross-entropy's
ignore_index)."""


@dataclass(frozen=True)
class Action:
    """One macro-action, decided at a chunk boundary and kept for `span` chunks.

    expert: expert id in [0, n_experts); span: number of chunks it covers (a value of
    `ActionSpace.spans`, not an index); rank_budget / bias_scale: indices into
    `ActionSpace.rank_budgets` / `ActionSpace.bias_scales`.
    """

    expert: int
    span: int
    rank_budget: int
    bias_scale: int

    def same_setting(self, other: Action | None) -> bool:
        """True when both apply the same adapter (expert, rank, bias); the span may differ.

        The span only says when the next decision happens, not what is applied, so two actions
        with the same setting applied back to back are one plan step.
        """
        return (
            other is not None
            and self.expert == other.expert
            and self.rank_budget == other.rank_budget
            and self.bias_scale == other.bias_scale
        )


def active_rank(rank: int, budget: float) -> int:
    """Number of leading rank components a budget keeps: ceil(budget * rank), at least 1.

    Rounded to 9 decimals before the ceiling so that e.g. 0.3 * 10 = 3.0000000000000004 keeps
    3 components, not 4.
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1 (got {rank})")
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"rank budget must be in (0, 1] (got {budget})")
    return max(1, min(rank, math.ceil(round(budget * rank, 9))))


@dataclass(frozen=True)
class ActionSpace:
    """Sizes and values of each action component (the router's config for its heads)."""

    n_experts: int
    spans: tuple[int, ...] = (1, 2, 3, 4)
    rank_budgets: tuple[float, ...] = (0.25, 0.5, 1.0)
    bias_scales: tuple[float, ...] = (0.5, 1.0, 1.5)

    def __post_init__(self) -> None:
        if self.n_experts < 1:
            raise ValueError(f"n_experts must be >= 1 (got {self.n_experts})")
        object.__setattr__(self, "spans", tuple(int(s) for s in self.spans))
        object.__setattr__(self, "rank_budgets", tuple(float(b) for b in self.rank_budgets))
        object.__setattr__(self, "bias_scales", tuple(float(b) for b in self.bias_scales))
        for name in ("spans", "rank_budgets", "bias_scales"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must not repeat a value (got {values})")
        if min(self.spans) < 1:
            raise ValueError(f"spans are chunk counts and must be >= 1 (got {self.spans})")
        if not all(0.0 < b <= 1.0 for b in self.rank_budgets):
            raise ValueError(f"rank budgets are fractions in (0, 1] (got {self.rank_budgets})")
        if not all(b > 0.0 and math.isfinite(b) for b in self.bias_scales):
            raise ValueError(f"bias scales must be finite and > 0 (got {self.bias_scales})")

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """Number of classes of each head, in `HEADS` order."""
        return (self.n_experts, len(self.spans), len(self.rank_budgets), len(self.bias_scales))

    @property
    def n_actions(self) -> int:
        """Size of the joint action space (the range of `encode`)."""
        return math.prod(self.head_sizes)

    @property
    def one_hot_dim(self) -> int:
        """Length of `one_hot`: one block per head plus one "no previous action" slot."""
        return sum(self.head_sizes) + 1

    def validate(self, action: Action) -> Action:
        """Return `action` unchanged, or raise ValueError if it is outside this space."""
        if not 0 <= action.expert < self.n_experts:
            raise ValueError(f"expert {action.expert} outside [0, {self.n_experts})")
        if action.span not in self.spans:
            raise ValueError(f"span {action.span} is not one of {self.spans}")
        if not 0 <= action.rank_budget < len(self.rank_budgets):
            raise ValueError(f"rank_budget index {action.rank_budget} out of range")
        if not 0 <= action.bias_scale < len(self.bias_scales):
            raise ValueError(f"bias_scale index {action.bias_scale} out of range")
        return action

    def indices(self, action: Action) -> tuple[int, int, int, int]:
        """Per-head class indices of an action (the span becomes its index in `spans`)."""
        self.validate(action)
        return (action.expert, self.spans.index(action.span), action.rank_budget, action.bias_scale)

    def from_indices(self, indices: Sequence[int]) -> Action:
        """Inverse of `indices`."""
        if len(indices) != len(HEADS):
            raise ValueError(f"expected {len(HEADS)} head indices (got {len(indices)})")
        expert, span_i, rank_i, bias_i = (int(i) for i in indices)
        if not 0 <= span_i < len(self.spans):
            raise ValueError(f"span index {span_i} out of range")
        return self.validate(Action(expert, self.spans[span_i], rank_i, bias_i))

    def encode(self, action: Action) -> int:
        """One flat integer in [0, n_actions): mixed radix over the heads, expert slowest."""
        flat = 0
        for index, size in zip(self.indices(action), self.head_sizes, strict=True):
            flat = flat * size + index
        return flat

    def decode(self, flat: int) -> Action:
        """Inverse of `encode`."""
        if not 0 <= flat < self.n_actions:
            raise ValueError(f"flat action {flat} outside [0, {self.n_actions})")
        digits = []
        for size in reversed(self.head_sizes):
            flat, digit = divmod(flat, size)
            digits.append(digit)
        return self.from_indices(digits[::-1])

    def to_tensor(self, actions: Sequence[Action]) -> torch.Tensor:
        """(N, 4) long tensor of head indices: the format the policy's log_prob/BC expect."""
        rows = [self.indices(a) for a in actions]
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(HEADS))

    def from_tensor(self, indices: torch.Tensor) -> list[Action]:
        """Actions from an (N, 4) tensor of head indices (e.g. `MacroPolicy.sample`)."""
        if indices.ndim != 2 or indices.shape[1] != len(HEADS):
            raise ValueError(f"expected an (N, {len(HEADS)}) tensor (got {tuple(indices.shape)})")
        return [self.from_indices(row) for row in indices.tolist()]

    def one_hot(self, action: Action | None) -> torch.Tensor:
        """Previous-action feature: one block per head, plus a last slot set when there is none.

        The first decision of a sequence has no previous action; a dedicated slot keeps that
        distinguishable from any real action (an all-zero vector would also be, but a slot
        lets a linear layer learn a bias for "start of sequence").
        """
        out = torch.zeros(self.one_hot_dim)
        if action is None:
            out[-1] = 1.0
            return out
        offset = 0
        for index, size in zip(self.indices(action), self.head_sizes, strict=True):
            out[offset + index] = 1.0
            offset += size
        return out

    def rank_fraction(self, action: Action) -> float:
        """The action's rank budget as a fraction of the expert's rank."""
        return self.rank_budgets[self.validate(action).rank_budget]

    def bias_value(self, action: Action) -> float:
        """The action's bias scale (multiplies the expert's delta)."""
        return self.bias_scales[self.validate(action).bias_scale]
