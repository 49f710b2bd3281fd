"""Paired statistics for one (experiment, metric): BCa CI, paired test, BH-FDR, Cohen's d_z.

Built on scipy.stats (bootstrap with method="BCa", ttest_rel, binomtest,
false_discovery_control) rather than hand-written loops; what we add is handling of the
degenerate cases scipy answers with NaN, and the z0/acceleration values reviewers ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from bemctl.errors import BemctlError


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    estimate: float
    z0: float | None
    acceleration: float | None
    n: int
    n_resamples: int
    confidence_level: float
    method: str
    degenerate: bool = False


@dataclass(frozen=True)
class PairedTest:
    name: str
    statistic: float | None
    p_value: float
    n: int
    discordant: tuple[int, int] | None = None  # (b, c) for binary metrics


@dataclass(frozen=True)
class FdrResult:
    adjusted: np.ndarray
    rejected: np.ndarray
    alpha: float
    family_size: int


def _as_finite(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise BemctlError(f"{what}: expected a 1-D sequence (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise BemctlError(f"{what}: contains NaN or infinite values")
    return arr


def bca_interval(
    diffs: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """BCa interval of the mean paired difference; all-equal input gives [c, c], degenerate."""
    d = _as_finite(diffs, "paired differences")
    if d.size < 2:
        raise BemctlError(f"BCa interval needs at least 2 paired examples (got {d.size})")
    estimate = float(d.mean())
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        return Interval(
            estimate,
            estimate,
            estimate,
            None,
            None,
            d.size,
            n_resamples,
            confidence_level,
            "BCa",
            degenerate=True,
        )
    res = sps.bootstrap(
        (d,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        method="BCa",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    boot = res.bootstrap_distribution
    z0 = float(sps.norm.ppf(np.mean(boot < estimate) + 0.5 * np.mean(boot == estimate)))
    jack = (d.sum() - d) / (d.size - 1)  # leave-one-out means, O(n)
    dev = jack.mean() - jack
    denom = 6.0 * (np.sum(dev**2) ** 1.5)
    accel = float(np.sum(dev**3) / denom) if denom > 0 else 0.0
    return Interval(
        float(res.confidence_interval.low),
        float(res.confidence_interval.high),
        estimate,
        z0,
        accel,
        d.size,
        n_resamples,
        confidence_level,
        "BCa",
    )


def is_binary(*arrays: np.ndarray) -> bool:
    return all(np.isin(a, (0.0, 1.0)).all() for a in arrays)


def paired_test(baseline: Sequence[float], variant: Sequence[float]) -> PairedTest:
    """Exact McNemar for 0/1 scores, else the paired t-test: both test the mean difference."""
    a = _as_finite(baseline, "baseline scores")
    b = _as_finite(variant, "variant scores")
    if a.shape != b.shape:
        raise BemctlError(f"paired scores differ in length ({a.size} vs {b.size})")
    n = a.size
    if is_binary(a, b):
        worse = int(np.sum((a == 1) & (b == 0)))
        better = int(np.sum((a == 0) & (b == 1)))
        if worse + better == 0:
            return PairedTest("McNemar exact", None, 1.0, n, (worse, better))
        p = sps.binomtest(better, worse + better, 0.5).pvalue
        return PairedTest("McNemar exact", float(better), float(p), n, (worse, better))
    d = b - a
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        # t is undefined with zero variance; the exact sign-flip p-value is then 2 * 2^-n.
        p = 1.0 if d[0] == 0 else min(1.0, 2.0 * 0.5**n)
        return PairedTest("sign-flip (constant difference)", None, p, n)
    res = sps.ttest_rel(b, a)
    return PairedTest("paired t-test", float(res.statistic), float(res.pvalue), n)


def benjamini_hochberg(pvalues: Sequence[float], alpha: float = 0.05) -> FdrResult:
    """BH step-up adjusted p-values for one invocation's family of hypotheses."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return FdrResult(p, p.astype(bool), alpha, 0)
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise BemctlError(f"p-values must be numbers in [0, 1] (got {p.tolist()})")
    adjusted = sps.false_discovery_control(p, method="bh")
    return FdrResult(adjusted, adjusted <= alpha, alpha, int(p.size))


def cohens_dz(diffs: Sequence[float]) -> float | None:
    """Mean difference over the SD of the differences (None when that SD is zero)."""
    d = np.asarray(diffs, dtype=float)
    sd = d.std(ddof=1) if d.size > 1 else 0.0
    return float(d.mean() / sd) if sd > 0 else None


DZ_FORMULA = "d_z = mean(diff) / sd(diff, ddof=1)"
