"""Paired statistics checked against scipy / statsmodels and textbook formulas."""

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from bemctl.errors import BemctlError
from engine.stats import (
    bca_interval,
    benjamini_hochberg,
    cohens_dz,
    is_binary,
    paired_test,
)

N_RESAMPLES = 2000


def _diffs(seed: int = 0, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.1, 1.0, n) + rng.exponential(0.5, n)  # skewed, so BCa matters


# ---------------------------------------------------------------- BCa interval


@pytest.mark.parametrize("seed, level", [(0, 0.95), (7, 0.9)])
def test_bca_matches_scipy_bootstrap(seed: int, level: float) -> None:
    d = _diffs(seed)
    got = bca_interval(d, n_resamples=N_RESAMPLES, confidence_level=level, seed=seed)
    ref = sps.bootstrap(
        (d,),
        np.mean,
        n_resamples=N_RESAMPLES,
        confidence_level=level,
        method="BCa",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    assert got.low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert got.high == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    assert got.low < got.estimate < got.high
    assert got.estimate == pytest.approx(d.mean())
    assert (got.n, got.n_resamples, got.confidence_level, got.method) == (
        d.size,
        N_RESAMPLES,
        level,
        "BCa",
    )
    assert not got.degenerate

    boot = ref.bootstrap_distribution
    z0 = sps.norm.ppf(np.mean(boot < d.mean()) + 0.5 * np.mean(boot == d.mean()))
    assert got.z0 == pytest.approx(z0)


def test_bca_same_seed_same_interval_other_seed_differs() -> None:
    d = _diffs(1)
    a = bca_interval(d, n_resamples=N_RESAMPLES, seed=3)
    b = bca_interval(d, n_resamples=N_RESAMPLES, seed=3)
    c = bca_interval(d, n_resamples=N_RESAMPLES, seed=4)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_bca_acceleration_is_textbook_jackknife() -> None:
    d = _diffs(2, n=25)
    n = d.size
    theta = np.array([np.mean(np.delete(d, i)) for i in range(n)])  # leave-one-out means
    theta_bar = theta.mean()
    num = sum((theta_bar - t) ** 3 for t in theta)
    den = 6.0 * sum((theta_bar - t) ** 2 for t in theta) ** 1.5
    got = bca_interval(d, n_resamples=N_RESAMPLES, seed=0)
    assert got.acceleration == pytest.approx(num / den, rel=1e-9)
    assert got.acceleration != 0.0  # skewed data: a real, non-trivial value


@pytest.mark.parametrize("value", [0.0, 1.0, -0.25])
def test_bca_degenerate_all_equal(value: float) -> None:
    got = bca_interval([value] * 30, n_resamples=N_RESAMPLES)
    assert got.low == got.high == got.estimate == value
    assert got.degenerate
    assert got.z0 is None and got.acceleration is None
    assert got.n == 30


@pytest.mark.parametrize("diffs", [[], [0.5]])
def test_bca_needs_two_examples(diffs: list[float]) -> None:
    with pytest.raises(BemctlError, match="at least 2"):
        bca_interval(diffs)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bca_refuses_non_finite(bad: float) -> None:
    with pytest.raises(BemctlError, match="NaN or infinite"):
        bca_interval([0.1, bad, 0.3])


def test_bca_refuses_2d() -> None:
    with pytest.raises(BemctlError, match="1-D"):
        bca_interval(np.zeros((3, 2)))


# ---------------------------------------------------------------- paired test


def _binary_pair() -> tuple[np.ndarray, np.ndarray]:
    # both right 20, baseline-only 3 (b), variant-only 11 (c), both wrong 6
    baseline = np.array([1] * 20 + [1] * 3 + [0] * 11 + [0] * 6, dtype=float)
    variant = np.array([1] * 20 + [0] * 3 + [1] * 11 + [0] * 6, dtype=float)
    rng = np.random.default_rng(0)
    order = rng.permutation(baseline.size)
    return baseline[order], variant[order]


def test_paired_test_binary_is_exact_mcnemar() -> None:
    baseline, variant = _binary_pair()
    got = paired_test(baseline, variant)
    assert "McNemar" in got.name
    assert got.discordant == (3, 11)
    assert got.n == 40
    table = np.array([[20, 3], [11, 6]])  # rows: baseline right/wrong; cols: variant right/wrong
    assert got.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert got.p_value < 0.06


def test_paired_test_binary_is_symmetric() -> None:
    baseline, variant = _binary_pair()
    forward, backward = paired_test(baseline, variant), paired_test(variant, baseline)
    assert backward.discordant == (11, 3)
    assert backward.p_value == pytest.approx(forward.p_value)


def test_paired_test_binary_no_discordant_pairs() -> None:
    scores = [1.0, 0.0, 1.0, 1.0]
    got = paired_test(scores, scores)
    assert got.p_value == 1.0
    assert got.discordant == (0, 0)
    assert got.statistic is None


def test_paired_test_continuous_is_ttest_rel() -> None:
    rng = np.random.default_rng(5)
    baseline = rng.uniform(0, 1, 60)
    variant = np.clip(baseline + rng.normal(0.05, 0.1, 60), 0, 1)
    got = paired_test(baseline, variant)
    ref = sps.ttest_rel(variant, baseline)
    assert got.name == "paired t-test"
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got.statistic > 0  # variant better -> positive t
    assert got.discordant is None


def test_paired_test_constant_difference() -> None:
    baseline = np.array([0.25, 0.5, 0.75, 0.125, 0.375])  # exact in binary: d is constant
    got = paired_test(baseline, baseline + 0.125)
    assert got.statistic is None
    assert got.p_value == pytest.approx(2 * 0.5**5)
    same = paired_test(baseline, baseline)
    assert same.p_value == 1.0


def test_paired_test_refuses_bad_input() -> None:
    with pytest.raises(BemctlError, match="differ in length"):
        paired_test([1.0, 0.0], [1.0, 0.0, 1.0])
    with pytest.raises(BemctlError, match="NaN"):
        paired_test([0.5, np.nan], [0.5, 0.6])


def test_is_binary() -> None:
    assert is_binary(np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0]))
    assert not is_binary(np.array([0.0, 1.0]), np.array([0.5, 1.0]))


# ---------------------------------------------------------------- Benjamini-Hochberg

P_FAMILY = [0.041, 0.010, 0.040, 0.012, 0.011, 0.30, 0.0004, 0.049]


def test_benjamini_hochberg_matches_statsmodels() -> None:
    got = benjamini_hochberg(P_FAMILY, alpha=0.05)
    reject, adjusted, _, _ = multipletests(P_FAMILY, alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(got.adjusted, adjusted, rtol=1e-12)
    assert int(got.rejected.sum()) == 4
    np.testing.assert_array_equal(got.rejected, reject)
    # the four smallest p-values: 0.0004, 0.010, 0.011, 0.012
    np.testing.assert_array_equal(np.flatnonzero(got.rejected), [1, 3, 4, 6])
    assert got.family_size == 8 and got.alpha == 0.05


def test_benjamini_hochberg_alpha_changes_rejections() -> None:
    assert int(benjamini_hochberg(P_FAMILY, alpha=0.01).rejected.sum()) == 1
    assert int(benjamini_hochberg(P_FAMILY, alpha=0.30).rejected.sum()) == 8


def test_benjamini_hochberg_empty_family() -> None:
    got = benjamini_hochberg([])
    assert got.family_size == 0
    assert got.adjusted.size == 0 and got.rejected.size == 0


@pytest.mark.parametrize("bad", [[0.01, float("nan")], [0.01, 1.5], [-0.1, 0.2]])
def test_benjamini_hochberg_refuses_bad_p(bad: list[float]) -> None:
    with pytest.raises(BemctlError, match=r"\[0, 1\]"):
        benjamini_hochberg(bad)


# ---------------------------------------------------------------- Cohen's d_z


def test_cohens_dz_is_mean_over_sd() -> None:
    d = _diffs(3, n=20)
    assert cohens_dz(d) == pytest.approx(d.mean() / d.std(ddof=1))
    assert cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # mean 2, sd 1


@pytest.mark.parametrize("diffs", [[0.3, 0.3, 0.3], [0.0, 0.0], [0.7]])
def test_cohens_dz_none_without_variance(diffs: list[float]) -> None:
    assert cohens_dz(diffs) is None
