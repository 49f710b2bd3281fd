"""Standardized effect sizes of a paired comparison.

Two numbers because readers ask for both: d_z standardizes by the SD of the differences (the
scale the paired test and power analysis work on), Hedges' g by the average SD of the two
score distributions (comparable with unpaired studies). g here is exactly what pingouin
reports for paired data: Cohen's d_av (Cumming 2012) times Hedges' small-sample correction
J = 1 - 3 / (4 (n_x + n_y) - 9) with n_x = n_y = n. Note that J is the independent-samples
correction (2n - 2 df); it is kept for comparability with pingouin, not derived for pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.stats._checks import RELATIVE_TOLERANCE, ArrayLike, as_pair, is_constant

FORMULA = (
    "d_z = mean(d) / sd(d, ddof=1) with d = variant - baseline; "
    "hedges_g = (mean(variant) - mean(baseline)) / sqrt((sd(variant)^2 + sd(baseline)^2) / 2)"
    " * (1 - 3 / (8n - 9))"
)


@dataclass(frozen=True)
class EffectSize:
    """d_z is None when the differences have zero SD; hedges_g when both scores do."""

    d_z: float | None
    hedges_g: float | None
    formula: str = FORMULA


def effect_size(baseline: ArrayLike, variant: ArrayLike) -> EffectSize:
    """d_z and Hedges' g of variant vs baseline (positive = variant higher)."""
    a, b = as_pair(baseline, variant)
    n = a.size
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    d = b - a
    d_z = None if is_constant(d, scale) else float(d.mean() / d.std(ddof=1))
    sd_av = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
    if sd_av <= RELATIVE_TOLERANCE * scale:
        g = None
    else:
        g = float((b.mean() - a.mean()) / sd_av * (1 - 3 / (4 * (n + n) - 9)))
    return EffectSize(d_z, g)
