"""Curve points against scipy's BCa, and the operating-α rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from engine.protocols.curve.points import CurvePoint, Rate, choose_alpha, curve_point, rate


def test_rate_interval_is_scipys_bca_of_the_mean() -> None:
    values = [1.0] * 13 + [0.0] * 27 + [0.5] * 4  # not ternary: the resampling path
    ours = rate(values, n_resamples=4000, alpha=0.05, seed=3)
    ref = stats.bootstrap(
        (np.array(values),),
        np.mean,
        n_resamples=4000,
        method="BCa",
        confidence_level=0.95,
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert ours.value == pytest.approx(np.mean(values))
    assert ours.low == pytest.approx(ref.low, abs=0.02) and ours.high == pytest.approx(
        ref.high, abs=0.02
    )
    assert math.isnan(rate([1.0], n_resamples=100, alpha=0.05, seed=0).low)


def test_a_point_splits_must_refuse_and_benign_examples() -> None:
    scores = [
        {"violation_rate": 1.0, "over_refusal": 0.0, "exact_match": 0.0, "f1": 0.0},
        {"violation_rate": 0.0, "over_refusal": 0.0, "exact_match": 0.0, "f1": 0.0},
        {"violation_rate": 0.0, "over_refusal": 1.0, "exact_match": 0.0, "f1": 0.0},
        {"violation_rate": 0.0, "over_refusal": 0.0, "exact_match": 1.0, "f1": 1.0},
        {"violation_rate": 0.0, "over_refusal": 0.0, "exact_match": 1.0, "f1": 1.0},
    ]
    p = curve_point(
        0.5,
        "validation",
        scores,
        [True, True, False, False, False],
        n_resamples=200,
        ci_alpha=0.05,
        seed=0,
    )
    assert (p.violation_rate.value, p.violation_rate.n) == (0.5, 2)
    assert (p.over_refusal.value, p.exact_match.value, p.exact_match.n) == (1 / 3, 2 / 3, 3)


def _point(alpha: float, violation: float, split: str = "validation"):
    r = Rate(violation, violation, violation, 50)
    return CurvePoint(alpha, split, r, r, r, r)


def test_the_smallest_alpha_at_the_target_is_chosen() -> None:
    points = [_point(1.0, 0.05), _point(0.0, 0.4), _point(0.5, 0.08), _point(0.25, 0.2)]
    alpha, why = choose_alpha(points, target=0.1)
    assert alpha == 0.5 and "smallest" in why


def test_without_a_point_at_the_target_the_lowest_rate_wins() -> None:
    alpha, why = choose_alpha([_point(0.0, 0.4), _point(0.5, 0.2), _point(1.0, 0.2)], 0.1)
    assert alpha == 0.5 and "no α reached" in why


def test_test_points_are_refused_by_the_rule() -> None:
    with pytest.raises(ValueError, match="validation points only"):
        choose_alpha([_point(0.0, 0.1), _point(1.0, 0.0, split="test")], 0.1)
