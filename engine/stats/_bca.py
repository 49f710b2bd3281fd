"""BCa endpoints from a bootstrap distribution and jackknife values (Efron & Tibshirani 14.3).

Shared by the per-example mean and the corpus-level statistic: both only differ in how the
bootstrap distribution and the leave-one-out values are produced. The arithmetic follows
scipy.stats.bootstrap(method="BCa") step by step (ties counted as half in z0, ndtr/ndtri,
linear quantile interpolation) so that on the same resamples the endpoints agree with scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri


@dataclass(frozen=True)
class BcaLimits:
    low: float
    high: float
    z0: float
    acceleration: float


def acceleration(jackknife: np.ndarray) -> float:
    """a = sum(dev^3) / (6 sum(dev^2)^1.5), dev = mean(jack) - jack; 0 when all jack are equal."""
    dev = jackknife.mean() - jackknife
    den = 6.0 * float(np.sum(dev**2)) ** 1.5
    return float(np.sum(dev**3)) / den if den > 0 else 0.0


def bias_correction(boot: np.ndarray, theta: float) -> float:
    """z0 = ndtri(mean(boot < theta) + 0.5 mean(boot == theta)), as scipy >= 1.9 counts ties.

    The fraction is clipped to [1/(2B), 1 - 1/(2B)]: when every resample falls on one side of
    the estimate z0 would be infinite and the interval NaN (scipy's answer); the clip gives the
    most extreme finite correction the B resamples can support instead.
    """
    b = boot.size
    below = int(np.count_nonzero(boot < theta)) + int(np.count_nonzero(boot <= theta))
    frac = np.clip(below / (2 * b), 1 / (2 * b), 1 - 1 / (2 * b))
    return float(ndtri(frac))


def bca_limits(boot: np.ndarray, theta: float, jackknife: np.ndarray, alpha: float) -> BcaLimits:
    """Two-sided BCa interval at level 1 - alpha from `boot` (B,) and leave-one-out values."""
    z0 = bias_correction(boot, theta)
    a_hat = acceleration(jackknife)
    z_alpha = float(ndtri(alpha / 2))
    num1 = z0 + z_alpha
    num2 = z0 - z_alpha
    levels = np.array([ndtr(z0 + num1 / (1 - a_hat * num1)), ndtr(z0 + num2 / (1 - a_hat * num2))])
    low, high = np.quantile(boot, levels, method="linear")
    return BcaLimits(float(low), float(high), z0, a_hat)
