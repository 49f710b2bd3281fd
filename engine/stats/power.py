"""Power of the two-sided paired t-test, its minimum detectable effect, and the n it needs.

Power comes from the noncentral t distribution: with df = n - 1, noncentrality
d_z sqrt(n) and critical value t_{1 - alpha/2, df}, power = P(T > t_c) + P(T < -t_c), the
same quantity statsmodels' TTestPower computes. It answers "could this experiment have seen
an effect of the size we care about?", which a non-significant p-value alone cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

from engine.stats._checks import ArrayLike, as_finite, check_alpha, is_constant, need_pairs
from store.errors import BemctlError

MAX_N = 1 << 40  # beyond this n_needed is reported as None (effect practically zero)


@dataclass(frozen=True)
class Power:
    """Power at `n` for `effect` (d_z); MDE at `target_power` in raw units and as d_z.

    `mde` (raw metric units) needs the SD of the differences and is None without it or when
    that SD is zero; `power` is None when the effect is undefined (constant differences).
    """

    power: float | None
    effect: float | None
    mde: float | None
    mde_dz: float
    n_needed: int | None
    n: int
    alpha: float
    target_power: float


def t_power(effect: float, n: float, alpha: float) -> float:
    """Power of the two-sided one-sample/paired t-test at standardized effect d_z.

    scipy's nct.cdf returns NaN far in the lower tail (noncentrality >~ 8), which is what
    makes statsmodels' TTestPower answer NaN there; that term is below P(T < 0) = Phi(-nc)
    < 1e-15 in those cases, so it is taken as 0.
    """
    df = n - 1
    nc = abs(effect) * np.sqrt(n)
    crit = sps.t.isf(alpha / 2, df)
    lower = float(sps.nct.cdf(-crit, df, nc))
    if not np.isfinite(lower):
        lower = 0.0
    return float(sps.nct.sf(crit, df, nc)) + lower


def _mde_dz(n: int, alpha: float, target: float) -> float:
    """Smallest d_z with power >= target at n (power is increasing in |d_z|)."""
    hi = 1.0
    while t_power(hi, n, alpha) < target:
        hi *= 2.0
    return float(optimize.brentq(lambda e: t_power(e, n, alpha) - target, 0.0, hi, xtol=1e-14))


def _n_needed(effect: float, alpha: float, target: float) -> int | None:
    """Smallest integer n >= 2 with power >= target; integer bisection, power increasing in n."""
    if t_power(effect, 2, alpha) >= target:
        return 2
    lo, hi = 2, 4
    while t_power(effect, hi, alpha) < target:
        lo, hi = hi, hi * 2
        if hi > MAX_N:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if t_power(effect, mid, alpha) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def power_analysis(
    diffs: ArrayLike | None = None,
    *,
    effect: float | None = None,
    n: int,
    alpha: float = 0.05,
    target_power: float = 0.8,
) -> Power:
    """Power of a paired t-test at n for the observed (from `diffs`) or given d_z.

    `effect`, when given, overrides the d_z observed in `diffs`; `diffs` still supplies the
    SD that converts the MDE into raw metric units.
    """
    alpha = check_alpha(alpha)
    target_power = check_alpha(target_power, "target_power")
    if target_power <= alpha:
        raise BemctlError(f"target_power ({target_power}) must exceed alpha ({alpha})")
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise BemctlError(f"power analysis needs n >= 2 paired examples (got {n!r})")
    n = int(n)
    if diffs is None and effect is None:
        raise BemctlError("power analysis needs observed differences or an effect size")
    sd = None
    if diffs is not None:
        d = as_finite(diffs, "paired differences")
        need_pairs(d.size, "a power analysis")
        if not is_constant(d):
            sd = float(d.std(ddof=1))
            if effect is None:
                effect = float(d.mean()) / sd
    if effect is not None and not np.isfinite(effect):
        raise BemctlError(f"effect size must be finite (got {effect})")
    mde_dz = _mde_dz(n, alpha, target_power)
    return Power(
        power=None if effect is None else t_power(effect, n, alpha),
        effect=None if effect is None else float(effect),
        mde=None if sd is None else mde_dz * sd,
        mde_dz=mde_dz,
        n_needed=None if not effect else _n_needed(effect, alpha, target_power),
        n=n,
        alpha=alpha,
        target_power=target_power,
    )
