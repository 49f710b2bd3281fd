"""BCa interval of the mean paired difference: scipy agreement, properties, edge cases."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from engine.stats import Interval, bca_interval
from engine.stats.interval import bootstrap_means
from store.errors import BemctlError


def _skewed(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.1, 1.0, n) + rng.exponential(0.5, n)  # skewed, so BCa matters


def _ternary(seed: int, n: int, probs: tuple[float, float, float] = (0.2, 0.6, 0.2)) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1.0, 0.0, 1.0], size=n, p=probs)


def _scipy_bca(d: np.ndarray, n_resamples: int, alpha: float, seed: int):
    return sps.bootstrap(
        (d,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method="BCa",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )


# ---------------------------------------------------------------- agreement with scipy


@pytest.mark.parametrize(
    "seed, n, n_resamples, alpha",
    [(0, 40, 2000, 0.05), (7, 25, 999, 0.10), (3, 3000, 1000, 0.05)],  # last: many chunks
)
def test_continuous_matches_scipy_exactly_on_same_generator(
    seed: int, n: int, n_resamples: int, alpha: float
) -> None:
    """Exact agreement, not Monte Carlo agreement: resample indices are drawn with the same
    `rng.integers(0, n, (rows, n))` calls scipy makes (chunked, same stream), so the bootstrap
    distribution is bitwise scipy's. The endpoints then differ only by float rounding in the
    acceleration (O(n) jackknife formula vs scipy's explicit leave-one-out means): rel 1e-12.
    """
    d = _skewed(seed, n)
    got = bca_interval(d, n_resamples=n_resamples, alpha=alpha, seed=seed)
    ref = _scipy_bca(d, n_resamples, alpha, seed)

    boot = bootstrap_means(d, n_resamples, np.random.default_rng(seed))
    np.testing.assert_array_equal(boot, ref.bootstrap_distribution)
    assert got.low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert got.high == pytest.approx(ref.confidence_interval.high, rel=1e-12)

    z0 = sps.norm.ppf(np.mean(boot < d.mean()) + 0.5 * np.mean(boot == d.mean()))
    assert got.z0 == pytest.approx(z0, rel=1e-12)
    assert got.low < got.estimate < got.high
    assert got.estimate == d.mean()
    assert (got.n, got.n_resamples, got.alpha, got.seed, got.method) == (
        n,
        n_resamples,
        alpha,
        seed,
        "BCa",
    )
    assert got.confidence_level == pytest.approx(1 - alpha)
    assert not got.degenerate


def _bca_mc_tolerance(d: np.ndarray, n_resamples: int, alpha: float) -> float:
    """4 standard errors of the difference of two independent B-resample BCa endpoints.

    Normal approximation to the bootstrap distribution (sd s = sd(d)/sqrt(n)):
    - the q-quantile of B draws has SE sqrt(q(1-q)/B) / phi(z_q) * s;
    - z0 is estimated from a fraction with SE sqrt(1/(4B)); dz0 = SE / phi(0), and an
      endpoint moves by about 2 dz0 * s (z0 enters the BCa level twice);
    plus one lattice step 1/n, because means of {-1, 0, 1} data live on a grid of 1/n.
    """
    s = d.std() / np.sqrt(d.size)
    q = alpha / 2
    se_quantile = np.sqrt(q * (1 - q) / n_resamples) / sps.norm.pdf(sps.norm.ppf(q))
    se_z0 = 2 * np.sqrt(1 / (4 * n_resamples)) / sps.norm.pdf(0)
    se_one = s * np.hypot(se_quantile, se_z0)
    return 4 * np.sqrt(2) * se_one + 1 / d.size


@pytest.mark.parametrize("seed, n, probs", [(0, 300, (0.2, 0.6, 0.2)), (1, 500, (0.05, 0.8, 0.15))])
def test_ternary_shortcut_matches_scipy_within_monte_carlo_error(
    seed: int, n: int, probs: tuple[float, float, float]
) -> None:
    """Monte Carlo agreement: the {-1, 0, 1} shortcut draws category counts from a multinomial
    instead of indices, so it cannot reuse scipy's stream; the tolerance is 4 SE of the
    difference of two independent estimates (see `_bca_mc_tolerance`), B = 10,000.
    """
    d = _ternary(seed, n, probs)
    b = 10_000
    got = bca_interval(d, n_resamples=b, alpha=0.05, seed=seed)
    ref = _scipy_bca(d, b, 0.05, seed + 100)
    tol = _bca_mc_tolerance(d, b, 0.05)
    assert got.low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert got.high == pytest.approx(ref.confidence_interval.high, abs=tol)
    assert got.estimate == d.mean()


def test_ternary_bootstrap_distribution_has_the_multinomial_moments() -> None:
    """The shortcut's resample means: E = mean(d), Var = var(d, ddof=0) / n (4 SE bounds)."""
    d = _ternary(4, 200, (0.3, 0.3, 0.4))
    b = 20_000
    boot = bootstrap_means(d, b, np.random.default_rng(0))
    var = d.var() / d.size
    assert abs(boot.mean() - d.mean()) < 4 * np.sqrt(var / b)
    assert abs(boot.var() / var - 1) < 4 * np.sqrt(2 / b)
    assert set(np.round(boot * d.size, 9)).issubset(set(range(-d.size, d.size + 1)))


def test_acceleration_is_textbook_jackknife() -> None:
    d = _skewed(2, 25)
    theta = np.array([np.mean(np.delete(d, i)) for i in range(d.size)])  # leave-one-out means
    dev = theta.mean() - theta
    expected = np.sum(dev**3) / (6.0 * np.sum(dev**2) ** 1.5)
    got = bca_interval(d, n_resamples=1000, seed=0)
    assert got.acceleration == pytest.approx(expected, rel=1e-9)
    assert got.acceleration != 0.0  # skewed data: a real, non-trivial value


@pytest.mark.parametrize("make", [lambda: _skewed(1, 50), lambda: _ternary(1, 50)])
def test_same_seed_same_interval(make) -> None:
    d = make()
    a = bca_interval(d, n_resamples=2000, seed=3)
    assert a == bca_interval(d, n_resamples=2000, seed=3)
    c = bca_interval(d, n_resamples=2000, seed=4)
    # {-1, 0, 1} means live on a 1/n lattice, so endpoints may coincide; z0 still differs
    assert dataclasses.replace(c, seed=3) != a


def test_peak_memory_is_chunked_at_n_10000() -> None:
    """No B x n matrix: peak traced allocation stays under 16 MiB at n = 10,000."""
    d = _skewed(0, 10_000)
    tracemalloc.start()
    try:
        bca_interval(d, n_resamples=2000, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


# ---------------------------------------------------------------- coverage


@pytest.mark.slow
def test_coverage_of_95_percent_interval_for_a_normal_mean() -> None:
    """The design check: 2,000 reps x n = 50 x B = 1,000; coverage must be in [0.93, 0.97].

    (Expected about 0.94: the bootstrap's ddof = 0 variance and normal quantiles under-cover
    slightly at n = 50; the MC SE of the estimate at 2,000 reps is 0.005.)
    """
    rng = np.random.default_rng(2024)
    samples = rng.normal(0.3, 1.0, (2000, 50))
    hits = 0
    for i, x in enumerate(samples):
        iv = bca_interval(x, n_resamples=1000, alpha=0.05, seed=i)
        hits += iv.low <= 0.3 <= iv.high
    coverage = hits / len(samples)
    assert 0.93 <= coverage <= 0.97


# ---------------------------------------------------------------- properties

_grid = st.integers(-4000, 4000).map(lambda k: k / 64)  # dyadic: sums are exact in float64


@settings(max_examples=40, deadline=None, database=None)
@given(
    pairs=st.lists(st.tuples(_grid, _grid), min_size=2, max_size=60),
    shift=st.integers(-64_000, 64_000).map(lambda k: k / 64),
)
def test_shifting_both_samples_leaves_interval_unchanged(
    pairs: list[tuple[float, float]], shift: float
) -> None:
    """Values on a 1/64 grid keep every sum exact, so the property holds bit for bit (for
    arbitrary floats it holds up to the rounding of (v + c) - (b + c))."""
    base = np.array([p[0] for p in pairs])
    var = np.array([p[1] for p in pairs])
    plain = bca_interval(var - base, n_resamples=300, seed=5)
    shifted = bca_interval((var + shift) - (base + shift), n_resamples=300, seed=5)
    assert shifted == plain


def _assert_negated(forward: Interval, backward: Interval, scale: float) -> None:
    tol = 1e-9 * (1 + scale)
    assert backward.low == pytest.approx(-forward.high, abs=tol)
    assert backward.high == pytest.approx(-forward.low, abs=tol)
    assert backward.estimate == -forward.estimate
    assert backward.degenerate == forward.degenerate
    if not forward.degenerate:
        assert backward.z0 == pytest.approx(-forward.z0, abs=1e-9)
        assert backward.acceleration == pytest.approx(-forward.acceleration, abs=1e-12)


@settings(max_examples=40, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.floats(-100, 100), st.floats(-100, 100)),
        min_size=2,
        max_size=60,
    )
)
def test_swapping_baseline_and_variant_negates_interval(pairs: list[tuple[float, float]]) -> None:
    """Resample indices do not depend on the values, so with a fixed seed the resamples of
    -d are the negated resamples of d; endpoints agree up to float rounding of the BCa levels."""
    base = np.array([p[0] for p in pairs])
    var = np.array([p[1] for p in pairs])
    forward = bca_interval(var - base, n_resamples=300, seed=11)
    backward = bca_interval(base - var, n_resamples=300, seed=11)
    _assert_negated(forward, backward, float(np.max(np.abs(var - base))))


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])),
        min_size=2,
        max_size=80,
    )
)
def test_swapping_negates_interval_for_the_multinomial_shortcut(
    pairs: list[tuple[float, float]],
) -> None:
    """The shortcut orients its second binomial draw by the sign of the first non-zero
    difference, so negating d negates every resample mean exactly here too."""
    base = np.array([p[0] for p in pairs])
    var = np.array([p[1] for p in pairs])
    forward = bca_interval(var - base, n_resamples=300, seed=2)
    backward = bca_interval(base - var, n_resamples=300, seed=2)
    _assert_negated(forward, backward, 1.0)
    d = var - base
    if not forward.degenerate:
        boot_f = bootstrap_means(d, 300, np.random.default_rng(2))
        boot_b = bootstrap_means(-d, 300, np.random.default_rng(2))
        np.testing.assert_array_equal(boot_b, -boot_f)


# ---------------------------------------------------------------- degenerate and bad input


@pytest.mark.parametrize("value", [0.0, 1.0, -0.25])
def test_all_equal_differences_give_a_point_interval(value: float) -> None:
    got = bca_interval([value] * 30, n_resamples=500)
    assert got.low == got.high == got.estimate == value
    assert got.degenerate
    assert got.z0 is None and got.acceleration is None
    assert got.n == 30


def test_rounding_noise_counts_as_constant() -> None:
    base = np.array([0.7, 0.3, 0.9, 0.11, 0.5])
    d = (base + 0.1) - base  # 0.1 up to rounding, not bitwise equal
    assert np.ptp(d) > 0
    got = bca_interval(d, n_resamples=500)
    assert got.degenerate
    assert got.low == got.high == pytest.approx(0.1)


@pytest.mark.parametrize("diffs", [[], [0.5]])
def test_needs_two_examples(diffs: list[float]) -> None:
    with pytest.raises(BemctlError, match="at least 2"):
        bca_interval(diffs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_refuses_non_finite(bad: float) -> None:
    with pytest.raises(BemctlError, match="NaN or infinite"):
        bca_interval([0.1, bad, 0.3])


def test_refuses_2d_and_bad_parameters() -> None:
    with pytest.raises(BemctlError, match="1-D"):
        bca_interval(np.zeros((3, 2)))
    with pytest.raises(BemctlError, match="alpha"):
        bca_interval([0.1, 0.2, 0.4], alpha=1.5)
    with pytest.raises(BemctlError, match="n_resamples"):
        bca_interval([0.1, 0.2, 0.4], n_resamples=0)
    with pytest.raises(BemctlError, match="n_resamples"):
        bca_interval([0.1, 0.2, 0.4], n_resamples=10.5)
    with pytest.raises(BemctlError, match="expected numbers"):
        bca_interval(["a", "b"])


@pytest.mark.parametrize("count", [1, 2, 99])
def test_refuses_fewer_resamples_than_the_cli_allows(count: int) -> None:
    """With one resample the "interval" is a single resampled mean, which can exclude the
    estimate it is an interval for; every entry point shares the same floor."""
    from engine.stats._checks import MIN_RESAMPLES

    d = np.random.default_rng(0).normal(0.1, 1.0, 50)
    with pytest.raises(BemctlError, match=f"n_resamples must be at least {MIN_RESAMPLES}"):
        bca_interval(d, n_resamples=count)
    assert bca_interval(d, n_resamples=MIN_RESAMPLES).n_resamples == MIN_RESAMPLES
