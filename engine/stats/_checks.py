"""Input checks and the float tolerance shared by every statistic in the package.

Scores arrive from evaluation code as lists or arrays; every public function funnels them
through here so that a NaN, a length mismatch or a bad alpha becomes one clean `BemctlError`
line instead of a NaN interval or a numpy traceback three calls later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from store.errors import BemctlError

ArrayLike = Sequence[float] | np.ndarray

# Differences computed as variant - baseline carry rounding noise of order eps * |scores|;
# anything within this relative band of a constant is treated as constant (never `==`).
RELATIVE_TOLERANCE = 1e-12

# Fewest bootstrap resamples any interval may use (the CLI, bemctl.toml and specs share it):
# with B resamples the BCa percentiles are order statistics of B means, and below ~100 the
# 2.5% tail holds two or three of them - an interval that can even exclude its own estimate.
MIN_RESAMPLES = 100


def as_finite(values: ArrayLike, what: str) -> np.ndarray:
    """A 1-D float64 copy of `values`, refusing NaN/inf (they would silently poison a mean)."""
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise BemctlError(f"{what}: expected numbers ({exc})") from None
    if arr.ndim != 1:
        raise BemctlError(f"{what}: expected a 1-D sequence (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise BemctlError(f"{what}: contains NaN or infinite values")
    return arr


def need_pairs(n: int, what: str) -> None:
    """Resampling and variance estimates are undefined below two paired examples."""
    if n < 2:
        raise BemctlError(f"{what} needs at least 2 paired examples (got {n})")


def as_pair(baseline: ArrayLike, variant: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated (baseline, variant) score arrays of equal length >= 2."""
    a = as_finite(baseline, "baseline scores")
    b = as_finite(variant, "variant scores")
    if a.shape != b.shape:
        raise BemctlError(f"paired scores differ in length ({a.size} vs {b.size})")
    need_pairs(a.size, "a paired comparison")
    return a, b


def check_alpha(alpha: float, what: str = "alpha") -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise BemctlError(f"{what} must lie strictly between 0 and 1 (got {alpha})")
    return alpha


def check_count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BemctlError(f"{what} must be a positive integer (got {value!r})")
    return int(value)


def check_resamples(value: int, what: str = "n_resamples") -> int:
    """A resample count an interval can rest on: an integer >= MIN_RESAMPLES."""
    count = check_count(value, what)
    if count < MIN_RESAMPLES:
        raise BemctlError(f"{what} must be at least {MIN_RESAMPLES} (got {count})")
    return count


def is_constant(values: np.ndarray, scale: float | None = None) -> bool:
    """True when `values` are equal up to rounding noise relative to `scale` (default max|x|)."""
    if values.size == 0:
        return True
    ref = float(np.max(np.abs(values))) if scale is None else float(scale)
    return float(np.ptp(values)) <= RELATIVE_TOLERANCE * ref


def is_all_zero(values: np.ndarray, scale: float) -> bool:
    """True when every value is zero up to rounding noise relative to `scale`."""
    return float(np.max(np.abs(values), initial=0.0)) <= RELATIVE_TOLERANCE * scale


# Permutation tests count null values with |T*| >= |T| as extreme. Values equal in exact
# arithmetic can differ by rounding (a BLAS matrix product vs a pairwise sum), so "equal"
# means within this relative band of the largest attainable |T|.
TIE_TOLERANCE = 1e-9
