"""Paired hypothesis tests of the mean difference - the quantity the BCa interval estimates.

Every test here has H0: E[variant - baseline] = 0 (for 0/1 scores that is P(b) = P(c), which
McNemar tests), so the p-value and the interval never disagree about *what* is compared.
Wilcoxon is deliberately absent: it tests a location shift of the differences' distribution
(a pseudo-median), not the mean, and can reject when the mean difference is zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from engine.stats._checks import (
    TIE_TOLERANCE,
    ArrayLike,
    as_pair,
    check_count,
    is_all_zero,
    is_constant,
)
from engine.stats._resample import bit_chunks
from store.errors import BemctlError

KINDS = ("auto", "t", "permutation", "mcnemar")


@dataclass(frozen=True)
class PairedTest:
    """Outcome of one paired test.

    `statistic` is t for the t-test, the observed mean difference for the sign-flip and
    corpus tests, and min(b, c) for McNemar (as statsmodels reports it); None when undefined.
    `discordant` is (b, c) = (#baseline-only correct, #variant-only correct) for McNemar.
    """

    name: str
    statistic: float | None
    p_value: float
    n: int
    discordant: tuple[int, int] | None = None
    n_permutations: int | None = None


def is_binary(*arrays: ArrayLike) -> bool:
    """True when every value of every array is 0 or 1 (exact-match style scores)."""
    return all(bool(np.isin(np.asarray(a, dtype=float), (0.0, 1.0)).all()) for a in arrays)


def paired_test(
    baseline: ArrayLike,
    variant: ArrayLike,
    kind: str = "auto",
    n_permutations: int = 9_999,
    seed: int = 0,
) -> PairedTest:
    """Test H0: mean(variant - baseline) = 0.

    kind: "auto" (McNemar exact when both score vectors are 0/1, else the paired t-test),
    "t", "permutation" (random sign flips of the differences) or "mcnemar".
    """
    if kind not in KINDS:
        raise BemctlError(f"unknown paired test kind {kind!r} (expected one of {', '.join(KINDS)})")
    a, b = as_pair(baseline, variant)
    binary = is_binary(a, b)
    if kind == "auto":
        kind = "mcnemar" if binary else "t"
    if kind == "mcnemar":
        if not binary:
            raise BemctlError("McNemar's test needs 0/1 scores in both baseline and variant")
        return mcnemar_exact(a, b)
    d = b - a
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    if kind == "t":
        return t_test(d, scale)
    return sign_flip_test(d, check_count(n_permutations, "n_permutations"), seed)


def discordant_pairs(baseline: np.ndarray, variant: np.ndarray) -> tuple[int, int]:
    """(b, c): examples only the baseline got right, and only the variant got right."""
    b = int(np.count_nonzero((baseline == 1) & (variant == 0)))
    c = int(np.count_nonzero((baseline == 0) & (variant == 1)))
    return b, c


def mcnemar_exact(baseline: np.ndarray, variant: np.ndarray) -> PairedTest:
    """Exact (binomial) McNemar: c ~ Bin(b + c, 1/2) under H0; p = 1 with no discordant pairs."""
    b, c = discordant_pairs(baseline, variant)
    n = int(baseline.size)
    if b + c == 0:
        return PairedTest("McNemar exact", None, 1.0, n, (b, c))
    p = min(1.0, 2.0 * float(sps.binom.cdf(min(b, c), b + c, 0.5)))
    return PairedTest("McNemar exact", float(min(b, c)), p, n, (b, c))


def t_test(diffs: np.ndarray, scale: float) -> PairedTest:
    """Paired t-test; constant differences (t undefined) get the exact sign-flip p-value.

    With all |d_i| equal to c != 0, only the all-plus and all-minus sign vectors reach |sum d|,
    so the exact sign-flip p is 2 * 2^-n; all-zero differences give p = 1.
    """
    n = int(diffs.size)
    if is_constant(diffs, scale):
        p = 1.0 if is_all_zero(diffs, scale) else min(1.0, 2.0 * 0.5**n)
        return PairedTest("sign-flip (constant difference)", None, p, n)
    se = float(diffs.std(ddof=1)) / np.sqrt(n)
    t = float(diffs.mean()) / se
    p = float(2.0 * sps.t.sf(abs(t), n - 1))
    return PairedTest("paired t-test", t, min(1.0, p), n)


def sign_flip_test(diffs: np.ndarray, n_permutations: int, seed: int = 0) -> PairedTest:
    """Monte Carlo sign-flip permutation test of the mean difference.

    Each chunk of random sign vectors is applied as one matrix product; with bits in {0, 1}
    and signs 1 - 2*bit, a flipped sum is sum(d) - 2 * (bits @ d).
    p = (1 + #{|flipped mean| >= |observed mean|}) / (B + 1), which is never 0 and is valid
    for a finite B (Phipson & Smyth 2010).
    """
    n = int(diffs.size)
    total = float(diffs.sum())
    threshold = abs(total) - TIE_TOLERANCE * float(np.abs(diffs).sum())
    hits = 0
    rng = np.random.default_rng(seed)
    for _, bits in bit_chunks(rng, n, n_permutations):
        flipped = total - 2.0 * (bits @ diffs)
        hits += int(np.count_nonzero(np.abs(flipped) >= threshold))
    p = (1 + hits) / (n_permutations + 1)
    return PairedTest("sign-flip permutation", total / n, p, n, None, n_permutations)
