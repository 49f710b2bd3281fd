"""Paired tests of the mean difference vs scipy / statsmodels / pingouin / exact enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pingouin as pg
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from engine.stats import is_binary, paired_test
from store.errors import BemctlError

# ---------------------------------------------------------------- McNemar


def _binary_pair(both: int, b: int, c: int, neither: int, seed: int = 0):
    baseline = np.array([1] * both + [1] * b + [0] * c + [0] * neither, dtype=float)
    variant = np.array([1] * both + [0] * b + [1] * c + [0] * neither, dtype=float)
    order = np.random.default_rng(seed).permutation(baseline.size)
    return baseline[order], variant[order]


def test_binary_scores_get_exact_mcnemar() -> None:
    baseline, variant = _binary_pair(20, 3, 11, 6)
    got = paired_test(baseline, variant)
    assert got.name == "McNemar exact"
    assert got.discordant == (3, 11)
    assert got.n == 40 and got.n_permutations is None
    ref = mcnemar(np.array([[20, 3], [11, 6]]), exact=True)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert got.statistic == ref.statistic == 3


def test_mcnemar_matches_statsmodels_on_random_tables() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        both, b, c, neither = rng.integers(0, 40, 4)
        if both + b + c + neither < 2:
            continue
        baseline, variant = _binary_pair(both, b, c, neither)
        got = paired_test(baseline, variant, kind="mcnemar")
        ref = mcnemar(np.array([[both, b], [c, neither]]), exact=True)
        assert got.discordant == (b, c)
        assert got.p_value == pytest.approx(min(1.0, ref.pvalue), rel=1e-10, abs=1e-15)
        assert paired_test(variant, baseline).p_value == pytest.approx(got.p_value)


def test_no_discordant_pairs_gives_p_one() -> None:
    scores = [1.0, 0.0, 1.0, 1.0]
    got = paired_test(scores, scores)
    assert (got.p_value, got.discordant, got.statistic) == (1.0, (0, 0), None)


def test_mcnemar_refuses_non_binary_scores() -> None:
    with pytest.raises(BemctlError, match="0/1"):
        paired_test([0.5, 1.0, 0.0], [1.0, 1.0, 0.0], kind="mcnemar")


# ---------------------------------------------------------------- t-test


def test_continuous_scores_get_paired_t_test() -> None:
    rng = np.random.default_rng(5)
    baseline = rng.uniform(0, 1, 60)
    variant = np.clip(baseline + rng.normal(0.05, 0.1, 60), 0, 1)
    got = paired_test(baseline, variant)
    ref = sps.ttest_rel(variant, baseline)
    ref_pg = pg.ttest(variant, baseline, paired=True)
    assert got.name == "paired t-test"
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert got.statistic == pytest.approx(ref_pg["T"].iloc[0], rel=1e-12)
    assert got.p_value == pytest.approx(ref_pg["p_val"].iloc[0], rel=1e-10)
    assert got.statistic > 0  # variant better -> positive t
    assert got.discordant is None and got.n_permutations is None


def test_t_test_on_binary_scores_when_asked() -> None:
    baseline, variant = _binary_pair(20, 3, 11, 6)
    got = paired_test(baseline, variant, kind="t")
    assert got.p_value == pytest.approx(sps.ttest_rel(variant, baseline).pvalue, rel=1e-10)


def test_constant_difference_uses_exact_sign_flip_p() -> None:
    baseline = np.array([0.7, 0.3, 0.9, 0.11, 0.5])
    got = paired_test(baseline, baseline + 0.1)  # constant up to rounding noise
    assert got.statistic is None
    assert got.p_value == pytest.approx(2 * 0.5**5)
    assert paired_test(baseline, baseline).p_value == 1.0
    # n = 2: only the sign vectors (+,+) and (-,-) reach |sum d|, so p = 2 / 4
    assert paired_test([0.25, 0.5], [0.375, 0.625]).p_value == 0.5
    assert paired_test([0.0, 0.5], [1.0, 1.5], kind="t").p_value == 0.5


# ---------------------------------------------------------------- sign-flip permutation


def _exact_sign_flip_p(d: np.ndarray) -> float:
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=d.size)))
    flipped = np.abs(signs @ d)
    return float(np.mean(flipped >= abs(d.sum()) - 1e-9 * np.abs(d).sum()))


@pytest.mark.parametrize(
    "d",
    [
        np.random.default_rng(0).normal(0.4, 1.0, 10),
        np.random.default_rng(1).normal(0.0, 1.0, 10),
        np.array([1.0, 1, 1, 0, -1, 1, 0, 1, 2, -1]),  # integer steps: many exact ties
    ],
)
def test_permutation_p_matches_exact_enumeration(d: np.ndarray) -> None:
    """n = 10: all 1,024 sign vectors give the exact p; the Monte Carlo p with B = 9,999
    must lie within 4 binomial SEs (plus the +1 / (B + 1) correction)."""
    exact = _exact_sign_flip_p(d)
    b = 9_999
    got = paired_test(np.zeros_like(d), d, kind="permutation", n_permutations=b, seed=3)
    assert got.name == "sign-flip permutation"
    assert got.n_permutations == b
    assert got.statistic == pytest.approx(d.mean())
    tol = 4 * np.sqrt(exact * (1 - exact) / b) + 1 / (b + 1)
    assert got.p_value == pytest.approx(exact, abs=tol)


def test_permutation_agrees_with_t_test_for_moderate_n() -> None:
    rng = np.random.default_rng(8)
    baseline = rng.uniform(0, 1, 200)
    variant = baseline + rng.normal(0.02, 0.15, 200)
    perm = paired_test(baseline, variant, kind="permutation")
    t = paired_test(baseline, variant, kind="t")
    assert perm.p_value == pytest.approx(t.p_value, abs=0.02)


def test_permutation_all_zero_differences_give_p_one() -> None:
    x = [0.2, 0.4, 0.9]
    assert paired_test(x, x, kind="permutation", n_permutations=999).p_value == 1.0


def test_same_seed_same_permutation_p() -> None:
    rng = np.random.default_rng(2)
    baseline, variant = rng.uniform(0, 1, 30), rng.uniform(0, 1, 30)
    a = paired_test(baseline, variant, kind="permutation", seed=7)
    assert a == paired_test(baseline, variant, kind="permutation", seed=7)
    assert a.p_value != paired_test(baseline, variant, kind="permutation", seed=8).p_value


# ---------------------------------------------------------------- input handling


def test_refuses_bad_input() -> None:
    with pytest.raises(BemctlError, match="differ in length"):
        paired_test([1.0, 0.0], [1.0, 0.0, 1.0])
    with pytest.raises(BemctlError, match="NaN"):
        paired_test([0.5, np.nan], [0.5, 0.6])
    with pytest.raises(BemctlError, match="at least 2"):
        paired_test([0.5], [0.6])
    with pytest.raises(BemctlError, match="unknown paired test kind 'wilcoxon'"):
        paired_test([0.5, 0.2], [0.6, 0.1], kind="wilcoxon")


def test_is_binary() -> None:
    assert is_binary(np.array([0.0, 1.0, 1.0]), [1, 1, 0])
    assert not is_binary(np.array([0.0, 1.0]), np.array([0.5, 1.0]))
