"""The drift monitor on the serving adapter's score stream.

Four signals, each looking for a *drop* in the serving score:
- Page-Hinkley and ADWIN, from `river` (a well-kept streaming library; its detectors are the
  published algorithms, so we do not write our own): every live example's score is fed in
  order. Page-Hinkley runs in mode "down" (threshold 20: on 0/1 exact-match scores river's
  default 50 waits ~100 examples after a drop from 0.8 to 0.3, 5 alarms on a stationary
  stream); ADWIN is two-sided, so its alarm counts only when its window's mean is below the
  reference mean. Both detectors fire on one update and restart themselves; here a firing
  stays on until the monitor is reset, so it can meet the other signals in the vote.
- Welch's t-test (one-sided, recent < reference) and the two-sample Kolmogorov-Smirnov test
  (with the recent mean below the reference mean), between the last `window` scores and the
  reference window (the scores right after the serving model last changed), both from
  scipy.stats, at `alpha`.

The alarm needs a strict majority of the signals (more than half: 3 of 4) by default. The
seeds' rule (`fired >= len(signals) // 2`) alarms on one signal of three (3 // 2 = 1), which
makes the monitor as jumpy as its jumpiest member. `vote = "any"` or `"all"` are offered for
studies of the trade-off. After an alarm, or whenever the serving model changes, the monitor
is `reset` with a new reference.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from river import drift as river_drift
from scipy import stats

Vote = Literal["majority", "any", "all"]
SIGNALS = ("page_hinkley", "adwin", "welch", "ks")


@dataclass(frozen=True)
class DriftCheck:
    fired: tuple[str, ...]  # the signals that fired on this update
    alarm: bool
    welch_p: float | None
    ks_p: float | None
    recent_mean: float | None
    reference_mean: float | None


def vote_passes(fired: int, total: int, vote: Vote) -> bool:
    if vote == "majority":
        return 2 * fired > total
    if vote == "any":
        return fired >= 1
    if vote == "all":
        return fired == total
    raise ValueError(f"unknown vote {vote!r}; known: majority, any, all")


class DriftMonitor:
    def __init__(
        self,
        *,
        window: int = 64,
        alpha: float = 0.01,
        vote: Vote = "majority",
        ph_threshold: float = 20.0,
        ph_delta: float = 0.005,
        ph_min_instances: int = 30,
        adwin_delta: float = 0.002,
    ) -> None:
        if window < 2 or not 0 < alpha < 1:
            raise ValueError(f"window must be >= 2 and alpha in (0, 1) (got {window}, {alpha})")
        vote_passes(0, len(SIGNALS), vote)  # refuse an unknown vote now, not at the first alarm
        self.window, self.alpha, self.vote = window, alpha, vote
        self._ph_args = {"threshold": ph_threshold, "delta": ph_delta,
                         "min_instances": ph_min_instances, "mode": "down"}  # fmt: skip
        self._adwin_delta = adwin_delta
        self.reset([])

    def reset(self, reference: Sequence[float]) -> None:
        """Start over: fresh detectors, `reference` as the scores to compare against (empty:
        the first `window` scores fed become the reference)."""
        self.page_hinkley = river_drift.PageHinkley(**self._ph_args)
        self.adwin = river_drift.ADWIN(delta=self._adwin_delta)
        self.reference: list[float] = list(reference)[-self.window :]
        self.recent: deque[float] = deque(maxlen=self.window)
        self._ph_fired = self._adwin_fired = False

    def update(self, scores: Sequence[float]) -> DriftCheck:
        """Feed one batch of serving scores (in stream order); what fired, and the vote."""
        for x in scores:
            x = float(x)
            if len(self.reference) < self.window:
                self.reference.append(x)
            else:
                self.recent.append(x)
            self.page_hinkley.update(x)
            self.adwin.update(x)
            self._ph_fired = self._ph_fired or self.page_hinkley.drift_detected
            if self.adwin.drift_detected and self.reference:
                # ADWIN is two-sided: only a window mean below the reference is a drop
                self._adwin_fired |= float(self.adwin.estimation) < float(np.mean(self.reference))
        ph, adwin = self._ph_fired, self._adwin_fired
        ref_mean = float(np.mean(self.reference)) if self.reference else None
        recent_mean = float(np.mean(self.recent)) if self.recent else None
        welch_p = ks_p = None
        welch = ks = False
        if len(self.recent) >= self.window and len(self.reference) >= self.window:
            ref, rec = np.asarray(self.reference), np.asarray(self.recent)
            if np.ptp(np.concatenate([ref, rec])) > 0:
                with warnings.catch_warnings():  # near-constant windows: scipy's own caveat
                    warnings.simplefilter("ignore", RuntimeWarning)
                    welch_p = float(
                        stats.ttest_ind(rec, ref, equal_var=False, alternative="less").pvalue
                    )
                # asymptotic: 0/1 scores are all ties, where the exact method gives up anyway
                ks_p = float(stats.ks_2samp(rec, ref, method="asymp").pvalue)
                below = recent_mean is not None and ref_mean is not None and recent_mean < ref_mean
                welch = welch_p < self.alpha
                ks = below and ks_p < self.alpha
        fired = tuple(name for name, on in zip(SIGNALS, (ph, adwin, welch, ks), strict=True) if on)
        return DriftCheck(
            fired,
            vote_passes(len(fired), len(SIGNALS), self.vote),
            welch_p,
            ks_p,
            recent_mean,
            ref_mean,
        )
