"""Sequence plans: chunk stickiness, plan-length cap, hysteresis and switch-rate counting."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.router.actions import Action
from engine.router.plan import mean_plan_length, plan_sequence, switch_rate


class Scripted:
    """A decide() that replays a list of actions and records every call."""

    def __init__(self, actions):
        self.actions = list(actions)
        self.calls: list[tuple[int, Action | None]] = []

    def __call__(self, chunk, prev):
        self.calls.append((chunk, prev))
        return self.actions[(len(self.calls) - 1) % len(self.actions)]


def act(expert, span=1, rank=0, bias=0):
    return Action(expert, span, rank, bias)


actions_st = st.builds(
    Action,
    expert=st.integers(0, 3),
    span=st.integers(1, 4),
    rank_budget=st.integers(0, 2),
    bias_scale=st.integers(0, 2),
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    n_chunks=st.integers(0, 30),
    proposals=st.lists(actions_st, min_size=1, max_size=12),
    max_actions=st.integers(1, 4),
    gains=st.lists(st.floats(-1, 1), min_size=1, max_size=5),
    threshold=st.floats(0, 0.5),
)
def test_plan_invariants_hold_for_any_decisions(n_chunks, proposals, max_actions, gains, threshold):
    decide = Scripted(proposals)
    plan = plan_sequence(
        n_chunks,
        decide,
        max_actions=max_actions,
        gain=lambda c, prev, new: gains[c % len(gains)],
        switch_cost=threshold,
        tau=0.05,
    )
    # cap: at most max_actions distinct settings applied, and every chunk routed
    assert plan.plan_length <= max_actions
    assert len(plan.chunk_actions) == n_chunks
    assert sum(step.n_chunks for step in plan.steps) == n_chunks
    # steps tile the sequence and each applies its own action to its chunks
    start = 0
    for step in plan.steps:
        assert step.start == start
        assert all(
            a.same_setting(step.action) for a in plan.chunk_actions[start : start + step.n_chunks]
        )
        start += step.n_chunks
    # stickiness: decide is called exactly at span starts, and a span's chunks all carry the
    # action applied there (nothing is revised inside a span)
    assert [c for c, _ in decide.calls] == [d.chunk for d in plan.decisions]
    if n_chunks:
        assert plan.decisions[0].chunk == 0
    for d, nxt in zip(plan.decisions, plan.decisions[1:], strict=False):
        assert nxt.chunk == d.chunk + d.applied.span
    for d in plan.decisions:
        assert all(a is d.applied for a in plan.chunk_actions[d.chunk : d.chunk + d.applied.span])
    if plan.decisions:
        last = plan.decisions[-1]
        if last.chunk + last.applied.span < n_chunks:  # decisions stopped early: cap reached
            assert plan.plan_length == max_actions
            assert all(a is last.applied for a in plan.chunk_actions[last.chunk :])
    # switches counted across chunk boundaries
    experts = plan.experts
    assert plan.n_switches == sum(a != b for a, b in zip(experts, experts[1:], strict=False))
    assert 0.0 <= plan.switch_rate <= 1.0
    # hysteresis: an expert change is applied iff its gain beat the threshold; a veto keeps
    # exactly the action decide() was shown as the previous one
    for d, (_, shown_prev) in zip(plan.decisions, decide.calls, strict=True):
        switch_proposed = shown_prev is not None and d.proposed.expert != shown_prev.expert
        assert (d.gain is not None) == switch_proposed
        if switch_proposed:
            assert d.vetoed == (d.gain <= threshold + 0.05)
            assert d.applied is (shown_prev if d.vetoed else d.proposed)
        else:
            assert not d.vetoed and d.applied is d.proposed


def test_cap_reached_later_chunks_keep_last_action_without_deciding():
    decide = Scripted([act(0), act(1), act(2), act(3), act(0)])
    plan = plan_sequence(10, decide, max_actions=3)
    assert plan.plan_length == 3
    assert plan.experts == [0, 1, 2, 2, 2, 2, 2, 2, 2, 2]
    assert [c for c, _ in decide.calls] == [0, 1, 2]  # no call once the cap is reached
    assert plan.steps[-1].start == 2 and plan.steps[-1].n_chunks == 8


def test_chunks_inside_a_span_never_call_decide():
    decide = Scripted([act(0, span=3), act(1, span=2), act(1, span=4, rank=1), act(1, 3, 1)])
    plan = plan_sequence(12, decide, max_actions=5)
    assert [c for c, _ in decide.calls] == [0, 3, 5, 9]
    assert plan.experts == [0] * 3 + [1] * 9
    # the call at chunk 3 saw the action applied to chunks 0-2
    assert decide.calls[1][1] == act(0, span=3)


def test_span_truncated_at_sequence_end():
    plan = plan_sequence(3, Scripted([act(2, span=4)]))
    assert len(plan.chunk_actions) == 3 and plan.plan_length == 1
    assert len(plan.decisions) == 1


def test_repeating_a_setting_continues_the_step():
    decide = Scripted([act(0), act(0, span=2), act(1), act(1)])
    plan = plan_sequence(5, decide, max_actions=2)
    assert plan.plan_length == 2
    assert [(s.start, s.n_chunks) for s in plan.steps] == [(0, 3), (3, 2)]
    assert [c for c, _ in decide.calls] == [0, 1, 3]  # chunk 4: cap reached, no call


def test_hysteresis_blocks_low_gain_switches_and_keeps_previous_action():
    decide = Scripted([act(0, span=2), act(1), act(1)])
    plan = plan_sequence(
        6, decide, max_actions=3, gain=lambda c, p, n: 0.2, switch_cost=0.15, tau=0.1
    )
    assert plan.experts == [0] * 6
    assert plan.n_switches == 0 and plan.switch_rate == 0.0
    assert plan.n_vetoed == 2  # at chunk 2 and chunk 4 (the kept action runs its 2-chunk span)
    assert [d.chunk for d in plan.decisions] == [0, 2, 4]
    assert plan.plan_length == 1  # keeping is not a new action


def test_hysteresis_allows_high_gain_switch():
    decide = Scripted([act(0, span=2), act(1, span=4)])
    plan = plan_sequence(6, decide, gain=lambda c, p, n: 0.26, switch_cost=0.15, tau=0.1)
    assert plan.experts == [0, 0, 1, 1, 1, 1]
    assert plan.n_switches == 1 and plan.n_vetoed == 0


def test_gain_is_only_asked_for_expert_switches():
    asked = []

    def gain(chunk, prev, new):
        asked.append(chunk)
        return 1.0

    decide = Scripted([act(0), act(0, rank=2), act(1), act(1, bias=2)])
    plan_sequence(4, decide, max_actions=4, gain=gain, switch_cost=0.1, tau=0.1)
    assert asked == [2]


def test_switch_rate_per_sequence_and_pooled():
    a = plan_sequence(5, Scripted([act(0), act(1), act(0), act(0), act(0)]), max_actions=5)
    assert a.n_switches == 2 and a.switch_rate == pytest.approx(2 / 4)
    b = plan_sequence(11, Scripted([act(0)]))
    assert b.n_switches == 0 and b.n_boundaries == 10
    assert switch_rate([a, b]) == pytest.approx(2 / 14)  # pooled over boundaries, not averaged
    assert mean_plan_length([a, b]) == pytest.approx((3 + 1) / 2)
    assert switch_rate([]) == 0.0 and mean_plan_length([]) == 0.0
    single = plan_sequence(1, Scripted([act(3)]))
    assert single.switch_rate == 0.0 and single.n_boundaries == 0


def test_empty_sequence_and_invalid_arguments():
    empty = plan_sequence(0, Scripted([act(0)]))
    assert empty.plan_length == 0 and empty.chunk_actions == ()
    with pytest.raises(ValueError):
        plan_sequence(-1, Scripted([act(0)]))
    with pytest.raises(ValueError):
        plan_sequence(3, Scripted([act(0)]), max_actions=0)
    with pytest.raises(ValueError):
        plan_sequence(3, Scripted([act(0, span=0)]))
    with pytest.raises(TypeError):
        plan_sequence(3, lambda c, p: (0, 1, 0, 0))
