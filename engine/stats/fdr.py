"""Benjamini-Hochberg adjustment across one invocation's family of (variant, metric) tests.

Hand-written rather than delegated so the definition is visible where verdicts are made:
adjusted p_(i) = min_{j >= i} p_(j) * m / j (reverse cumulative minimum over the sorted
p-values), capped at 1; a hypothesis is rejected when its adjusted p <= alpha. That is the
same set as the step-up rule "reject the k smallest, k = max{i : p_(i) <= i alpha / m}", and
deciding on the adjusted values keeps the displayed number and the decision consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.stats._checks import ArrayLike, check_alpha
from store.errors import BemctlError


@dataclass(frozen=True, eq=False)
class FdrResult:
    """BH-adjusted p-values and rejections, in the order the p-values were given."""

    adjusted: np.ndarray
    rejected: np.ndarray
    alpha: float
    family_size: int


def benjamini_hochberg(pvalues: ArrayLike, alpha: float = 0.05) -> FdrResult:
    """BH step-up adjusted p-values (controls the FDR at alpha for independent tests)."""
    alpha = check_alpha(alpha)
    p = np.array(pvalues, dtype=float)
    if p.ndim != 1:
        raise BemctlError(f"p-values: expected a 1-D sequence (got shape {p.shape})")
    m = p.size
    if m == 0:
        return FdrResult(np.empty(0), np.empty(0, dtype=bool), alpha, 0)
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        bad = p[np.isnan(p) | (p < 0) | (p > 1)][0]
        raise BemctlError(f"p-values must be numbers in [0, 1] (got {bad})")
    order = np.argsort(p, kind="stable")
    # p / (i / m), not p * m / i: dividing by a factor <= 1 can never round below p
    scaled = p[order] / (np.arange(1, m + 1) / m)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return FdrResult(adjusted, adjusted <= alpha, alpha, m)
