"""Turning per-boundary decisions into one sequence's routing plan.

Rules, in the order they apply at a chunk boundary:
1. Chunk stickiness: an action with span k is applied to its k chunks (fewer at the end of
   the sequence) and nothing is decided inside them: `decide` is only called at the start of
   a span, before that chunk's tokens are seen, and an applied action is never revised. Earlier
   chunks' K/V therefore stay valid whatever is decided later.
2. Plan-length cap: a plan has at most `max_actions` steps (default 3). A step is a maximal
   run of chunks applying the same setting (expert, rank budget, bias scale; see
   `Action.same_setting`): re-proposing the current setting, or being kept by hysteresis,
   continues the step and costs nothing. Once the cap is reached no further decision is
   made and the remaining chunks keep the last action.
3. Hysteresis (`engine.router.hysteresis.keep_or_switch`): a proposal changing expert is only
   applied when `gain(chunk, prev, proposed)` exceeds switch_cost + tau; otherwise the
   previous action is kept for another span.

For policy-gradient training note that the proposal is what the policy sampled (use its
log-probability), and the hysteresis veto is part of the environment; `Decision` keeps both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.router.actions import Action
from engine.router.hysteresis import keep_or_switch, switch_threshold

DecideFn = Callable[[int, Action | None], Action]
"""decide(chunk_index, prev_action) -> proposed action for the span starting at chunk_index."""

GainFn = Callable[[int, Action, Action], float]
"""gain(chunk_index, prev_action, proposed_action) -> estimated gain of the expert switch."""


@dataclass(frozen=True)
class Decision:
    """One call of `decide`: where, what was proposed, what was applied and why."""

    chunk: int
    proposed: Action
    applied: Action
    vetoed: bool  # hysteresis kept the previous action instead of the proposed expert switch
    gain: float | None  # the estimate used, None when no expert switch was proposed


@dataclass(frozen=True)
class PlanStep:
    """A run of chunks [start, start + n_chunks) applying one setting."""

    start: int
    n_chunks: int
    action: Action


@dataclass(frozen=True)
class SequencePlan:
    """The routing of one sequence: per-chunk actions plus the counts the router gates need."""

    n_chunks: int
    max_actions: int
    chunk_actions: tuple[Action, ...]
    steps: tuple[PlanStep, ...]
    decisions: tuple[Decision, ...]
    n_switches: int  # chunk boundaries where the expert changes

    @property
    def plan_length(self) -> int:
        """Number of steps (distinct consecutive settings), <= max_actions."""
        return len(self.steps)

    @property
    def n_boundaries(self) -> int:
        """Chunk boundaries inside the sequence (n_chunks - 1, 0 for an empty sequence)."""
        return max(self.n_chunks - 1, 0)

    @property
    def switch_rate(self) -> float:
        """Expert switches per chunk boundary (0 when the sequence has no boundary)."""
        return self.n_switches / self.n_boundaries if self.n_boundaries else 0.0

    @property
    def n_vetoed(self) -> int:
        """Expert switches refused by hysteresis."""
        return sum(d.vetoed for d in self.decisions)

    @property
    def experts(self) -> list[int]:
        """Expert id of each chunk."""
        return [a.expert for a in self.chunk_actions]


def _check_proposal(action: object, chunk: int) -> Action:
    if not isinstance(action, Action):
        raise TypeError(f"decide returned {type(action).__name__} at chunk {chunk}, not an Action")
    if action.span < 1 or action.expert < 0:
        raise ValueError(f"decide returned an invalid action at chunk {chunk}: {action}")
    return action


def plan_sequence(
    n_chunks: int,
    decide: DecideFn,
    *,
    max_actions: int = 3,
    gain: GainFn | None = None,
    switch_cost: float = 0.0,
    tau: float = 0.0,
) -> SequencePlan:
    """Build a sequence's plan by calling `decide` at span boundaries only (see module doc).

    `gain=None` disables hysteresis (every proposed switch is taken, whatever switch_cost
    and tau are); the router passes e.g. the policy's expert-probability margin
    (`engine.router.hysteresis.expert_margin_gain`).
    """
    if n_chunks < 0:
        raise ValueError(f"n_chunks must be >= 0 (got {n_chunks})")
    if max_actions < 1:
        raise ValueError(f"max_actions must be >= 1 (got {max_actions})")
    switch_threshold(switch_cost, tau)  # validate up front, not only at the first switch

    chunk_actions: list[Action] = []
    steps: list[list] = []  # [start, n_chunks, action], frozen into PlanSteps at the end
    decisions: list[Decision] = []
    prev: Action | None = None
    chunk = 0
    while chunk < n_chunks:
        if len(steps) < max_actions:
            proposed = _check_proposal(decide(chunk, prev), chunk)
            estimate: float | None = None
            if prev is not None and proposed.expert != prev.expert:
                estimate = math.inf if gain is None else float(gain(chunk, prev, proposed))
                applied = keep_or_switch(prev, proposed, estimate, switch_cost, tau)
            else:
                applied = proposed
            vetoed = estimate is not None and applied is prev
            decisions.append(Decision(chunk, proposed, applied, vetoed, estimate))
            covered = min(applied.span, n_chunks - chunk)
        else:  # cap reached: the last action runs to the end, nothing more is decided
            assert prev is not None
            applied, covered = prev, n_chunks - chunk
        if steps and applied.same_setting(steps[-1][2]):
            steps[-1][1] += covered
        else:
            steps.append([chunk, covered, applied])
        chunk_actions.extend([applied] * covered)
        chunk += covered
        prev = applied

    n_switches = sum(
        a.expert != b.expert for a, b in zip(chunk_actions, chunk_actions[1:], strict=False)
    )
    return SequencePlan(
        n_chunks=n_chunks,
        max_actions=max_actions,
        chunk_actions=tuple(chunk_actions),
        steps=tuple(PlanStep(s, n, a) for s, n, a in steps),
        decisions=tuple(decisions),
        n_switches=n_switches,
    )


def switch_rate(plans: Sequence[SequencePlan]) -> float:
    """Expert switches per chunk boundary pooled over sequences (the router gate's metric).

    Pooled (total switches / total boundaries), not a mean of per-sequence rates, so a
    two-chunk sequence does not weigh as much as a twenty-chunk one.
    """
    boundaries = sum(p.n_boundaries for p in plans)
    return sum(p.n_switches for p in plans) / boundaries if boundaries else 0.0


def mean_plan_length(plans: Sequence[SequencePlan]) -> float:
    """Mean number of plan steps per sequence (gate: <= 3); 0 for no plans."""
    return sum(p.plan_length for p in plans) / len(plans) if plans else 0.0
