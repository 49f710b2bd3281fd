"""Hysteresis: an expert switch needs gain > switch_cost + tau; same-expert changes are free."""

import math

import pytest
import torch

from engine.router.actions import Action
from engine.router.hysteresis import expert_margin_gain, keep_or_switch, switch_threshold

PREV = Action(expert=0, span=2, rank_budget=1, bias_scale=1)
OTHER = Action(expert=1, span=1, rank_budget=2, bias_scale=0)


@pytest.mark.parametrize("gain", [-1.0, 0.0, 0.1, 0.29, 0.3])
def test_no_switch_at_or_below_threshold(gain):
    kept = keep_or_switch(PREV, OTHER, gain=gain, switch_cost=0.2, tau=0.1)
    assert kept is PREV  # the previous action, span included, is kept


@pytest.mark.parametrize("gain", [0.3001, 0.5, math.inf])
def test_switch_above_threshold(gain):
    assert keep_or_switch(PREV, OTHER, gain=gain, switch_cost=0.2, tau=0.1) is OTHER


def test_same_expert_changes_rank_bias_span_without_gain():
    same_expert = Action(expert=0, span=4, rank_budget=0, bias_scale=2)
    assert keep_or_switch(PREV, same_expert, gain=-5.0, switch_cost=0.2, tau=0.1) is same_expert


def test_first_decision_is_free():
    assert keep_or_switch(None, OTHER, gain=-1.0, switch_cost=0.5, tau=0.5) is OTHER


@pytest.mark.parametrize(
    ("cost", "tau"), [(-0.1, 0.0), (0.0, -0.1), (math.nan, 0.0), (0.0, math.inf)]
)
def test_invalid_threshold_terms(cost, tau):
    with pytest.raises(ValueError):
        switch_threshold(cost, tau)


def test_nan_gain_is_an_error():
    with pytest.raises(ValueError):
        keep_or_switch(PREV, OTHER, gain=math.nan, switch_cost=0.1, tau=0.1)


def test_expert_margin_gain_is_probability_difference():
    probs = torch.tensor([0.2, 0.7, 0.1])
    assert expert_margin_gain(probs, PREV, OTHER) == pytest.approx(0.5)
    assert expert_margin_gain(probs, OTHER, PREV) == pytest.approx(-0.5)
    assert expert_margin_gain(probs, None, OTHER) == math.inf
    # margin 0.5 clears 0.2 + 0.1 but not 0.4 + 0.2
    assert keep_or_switch(PREV, OTHER, expert_margin_gain(probs, PREV, OTHER), 0.2, 0.1) is OTHER
    assert keep_or_switch(PREV, OTHER, expert_margin_gain(probs, PREV, OTHER), 0.4, 0.2) is PREV
