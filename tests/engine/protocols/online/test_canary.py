"""The canary gate's non-inferiority logic, against scipy and exact cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.protocols.online.canary import canary_decision, non_inferiority


def test_matches_scipy_one_sided_paired_t_test_with_margin() -> None:
    rng = np.random.default_rng(0)
    serving = rng.random(40)
    shadow = serving + rng.normal(-0.01, 0.05, 40)
    result = non_inferiority(shadow, serving, margin=0.05, alpha=0.05)
    expected = stats.ttest_rel(shadow + 0.05, serving, alternative="greater").pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.mean_diff == pytest.approx(float(np.mean(shadow - serving)))
    assert result.non_inferior == (expected < 0.05)


def test_a_small_canary_without_evidence_does_not_promote() -> None:
    """No significant loss is not enough: a noisy 6-example canary proves nothing."""
    shadow, serving = [1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1]
    r = non_inferiority(shadow, serving, margin=0.05, alpha=0.05)
    assert not r.non_inferior and r.p_value > 0.05


def test_equal_differences_decide_exactly() -> None:
    same = non_inferiority([1, 1, 0, 0], [1, 1, 0, 0], margin=0.02, alpha=0.05)
    assert same.non_inferior and same.p_value == 0.0  # every difference 0 > -0.02
    worse = non_inferiority([0, 0, 0], [1, 1, 1], margin=0.02, alpha=0.05)
    assert not worse.non_inferior and worse.p_value == 1.0
    with pytest.raises(ValueError, match="equal 1-d"):
        non_inferiority([1, 0], [1], margin=0.0, alpha=0.05)


def test_promotion_needs_both_slices() -> None:
    good = ([1.0] * 30, [0.0] * 15 + [1.0] * 15)
    bad = ([0.0] * 30, [1.0] * 30)
    yes = canary_decision(*good, *good, margin=0.05, alpha=0.05)
    assert yes.promote and yes.reason == "not worse on canary and forgetting set"
    forgot = canary_decision(*good, *bad, margin=0.05, alpha=0.05)
    assert not forgot.promote and forgot.reason.startswith("forgetting -1.000")
    assert forgot.canary.non_inferior and not forgot.forgetting.non_inferior
