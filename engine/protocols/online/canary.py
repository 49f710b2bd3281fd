"""The canary gate: may the shadow adapter replace the serving one?

Only when it is shown *not worse*, on two paired slices: the canary (recent traffic the
shadow did not train on) and the forgetting set (the history's world). "Not worse" is a
one-sided non-inferiority test: H0 says the shadow is worse by at least `margin`
(mean(shadow − serving) ≤ −margin); the shadow is promoted only if both slices reject H0 at
`alpha`. A shadow that merely did not *significantly* lose is not enough: absence of evidence
of harm on a small canary would promote anything.

The test is the paired t-test of the shifted differences (scipy.stats.ttest_1samp,
alternative="greater"); when every difference is equal (common on exact-match canaries) the
t statistic is undefined and the decision is exact: non-inferior iff that difference > −margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class NonInferiority:
    n: int
    mean_diff: float  # mean(shadow - serving)
    margin: float
    p_value: float  # of H0: mean_diff <= -margin
    non_inferior: bool


@dataclass(frozen=True)
class CanaryDecision:
    promote: bool
    canary: NonInferiority
    forgetting: NonInferiority
    reason: str


def non_inferiority(
    shadow: Sequence[float], serving: Sequence[float], margin: float, alpha: float
) -> NonInferiority:
    a, b = np.asarray(shadow, dtype=float), np.asarray(serving, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"paired scores must be two equal 1-d lists of >= 2 (got {a.shape}, {b.shape})"
        )
    if margin < 0 or not 0 < alpha < 1:
        raise ValueError(f"margin must be >= 0 and alpha in (0, 1) (got {margin}, {alpha})")
    diff = a - b
    mean = float(diff.mean())
    if np.ptp(diff) == 0:  # every difference equal: no spread, the answer is exact
        p = 0.0 if mean > -margin else 1.0
    else:
        p = float(stats.ttest_1samp(diff + margin, 0.0, alternative="greater").pvalue)
    return NonInferiority(len(diff), mean, margin, p, p < alpha)


def canary_decision(
    canary_shadow: Sequence[float],
    canary_serving: Sequence[float],
    forgetting_shadow: Sequence[float],
    forgetting_serving: Sequence[float],
    *,
    margin: float,
    alpha: float,
) -> CanaryDecision:
    canary = non_inferiority(canary_shadow, canary_serving, margin, alpha)
    forgetting = non_inferiority(forgetting_shadow, forgetting_serving, margin, alpha)
    failed = [
        f"{name} {r.mean_diff:+.3f} not shown > -{margin:g} (p={r.p_value:.3g}, n={r.n})"
        for name, r in (("canary", canary), ("forgetting", forgetting))
        if not r.non_inferior
    ]
    promote = not failed
    reason = "not worse on canary and forgetting set" if promote else "; ".join(failed)
    return CanaryDecision(promote, canary, forgetting, reason)
