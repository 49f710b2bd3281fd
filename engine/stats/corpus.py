"""Corpus-level metrics (BLEU/chrF style): resample examples, recompute the corpus score.

A corpus metric is not the mean of per-sentence scores, so averaging per-example values
would bootstrap the wrong statistic. Such a metric declares itself by providing per-example
sufficient statistics (n, k) for each system and a `score` that maps summed statistics (m, k)
to m corpus scores; a bootstrap resample with multinomial counts c (m, n) then has the paired
statistic score(c @ S_variant) - score(c @ S_baseline), computed a chunk of rows at a time.
Resample indices come from the same chunked draws as the per-example mean, so the mean
written as a corpus metric (k = 1, score = s / n) reproduces `bca_interval` on the same seed.

Hypothesis test choice: paired approximate randomization (Riezler & Maxwell 2005; sacreBLEU's
`--paired-ar`). Under H0 the two systems' outputs are exchangeable within each example, so
each random swap mask (one coin per example) gives a null value of the corpus difference;
p = (1 + #{|T*| >= |T|}) / (R + 1). It is the corpus analogue of the sign-flip test used for
per-example means (for a mean metric a swap is exactly a sign flip of d_i).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.stats._bca import bca_limits
from engine.stats._checks import (
    TIE_TOLERANCE,
    check_alpha,
    check_count,
    check_resamples,
    is_constant,
    need_pairs,
)
from engine.stats._resample import bit_chunks, counts_from_indices, index_chunks
from engine.stats.interval import Interval
from engine.stats.paired import PairedTest
from store.errors import BemctlError

CorpusScore = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class CorpusStatistic:
    """Per-example sufficient statistics of both systems and the corpus-level score.

    `score(summed)` takes an (m, k) array of summed statistics and returns m scores; e.g.
    micro-averaged precision is `lambda s: s[:, 0] / (s[:, 0] + s[:, 1])` over (tp, fp).
    """

    stats_baseline: np.ndarray
    stats_variant: np.ndarray
    score: CorpusScore
    name: str = "corpus statistic"

    def __post_init__(self) -> None:
        base = _as_stats(self.stats_baseline, "baseline corpus statistics")
        var = _as_stats(self.stats_variant, "variant corpus statistics")
        if base.shape != var.shape:
            raise BemctlError(f"corpus statistics differ in shape ({base.shape} vs {var.shape})")
        need_pairs(base.shape[0], "a corpus statistic")
        object.__setattr__(self, "stats_baseline", base)
        object.__setattr__(self, "stats_variant", var)

    @property
    def n(self) -> int:
        return int(self.stats_baseline.shape[0])

    def scores(self, summed: np.ndarray) -> np.ndarray:
        """`score` with its output checked: (m,) finite values."""
        out = np.asarray(self.score(summed), dtype=float)
        if out.shape != (summed.shape[0],):
            raise BemctlError(
                f"{self.name}: score must map ({summed.shape[0]}, k) sums to "
                f"{summed.shape[0]} values (got shape {out.shape})"
            )
        if not np.all(np.isfinite(out)):
            raise BemctlError(f"{self.name}: score returned NaN or inf on some resample")
        return out

    def corpus_scores(self) -> tuple[float, float]:
        """(baseline, variant) corpus scores on the full evaluation set."""
        b = self.scores(self.stats_baseline.sum(axis=0, keepdims=True))
        v = self.scores(self.stats_variant.sum(axis=0, keepdims=True))
        return float(b[0]), float(v[0])

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Corpus scores with example i removed, from total - S_i: O(n k), no n x n matrix."""
        b = self.scores(self.stats_baseline.sum(axis=0) - self.stats_baseline)
        v = self.scores(self.stats_variant.sum(axis=0) - self.stats_variant)
        return b, v

    def pseudo_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Jackknife pseudo-values n*theta - (n-1)*theta_(i) per system.

        They are each example's contribution to the corpus score (for a mean metric they are
        the per-example scores themselves), which lets effect size and power analysis treat a
        corpus metric like a per-example one.
        """
        n = self.n
        base, var = self.corpus_scores()
        loo_b, loo_v = self.leave_one_out()
        return n * base - (n - 1) * loo_b, n * var - (n - 1) * loo_v


def _as_stats(values: np.ndarray, what: str) -> np.ndarray:
    arr = np.array(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise BemctlError(f"{what}: expected an (n, k) array (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise BemctlError(f"{what}: contains NaN or infinite values")
    return arr


def corpus_bootstrap(
    corpus: CorpusStatistic, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Paired corpus differences on `n_resamples` bootstrap resamples (chunked)."""
    n, k = corpus.stats_baseline.shape
    both = np.hstack([corpus.stats_baseline, corpus.stats_variant])
    boot = np.empty(n_resamples)
    for rows, idx in index_chunks(rng, n, n_resamples):
        summed = counts_from_indices(idx, n) @ both
        boot[rows] = corpus.scores(summed[:, k:]) - corpus.scores(summed[:, :k])
    return boot


def bca_interval_corpus(
    corpus: CorpusStatistic,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """BCa interval of score(variant) - score(baseline), the score recomputed per resample.

    Acceleration comes from the leave-one-out corpus differences (total - S_i).
    """
    n_resamples = check_resamples(n_resamples)
    alpha = check_alpha(alpha)
    base, var = corpus.corpus_scores()
    estimate = var - base
    common = dict(
        n=corpus.n,
        n_resamples=n_resamples,
        alpha=alpha,
        confidence_level=1.0 - alpha,
        method="BCa (corpus)",
        seed=seed,
    )
    boot = corpus_bootstrap(corpus, n_resamples, np.random.default_rng(seed))
    if is_constant(np.append(boot, estimate)):
        return Interval(estimate, estimate, estimate, None, None, **common, degenerate=True)
    loo_b, loo_v = corpus.leave_one_out()
    lim = bca_limits(boot, estimate, loo_v - loo_b, alpha)
    return Interval(lim.low, lim.high, estimate, lim.z0, lim.acceleration, **common)


def corpus_permutation_test(
    corpus: CorpusStatistic, n_permutations: int = 9_999, seed: int = 0
) -> PairedTest:
    """Paired approximate randomization test of the corpus difference (see module docstring)."""
    n_permutations = check_count(n_permutations, "n_permutations")
    base, var = corpus.corpus_scores()
    observed = var - base
    total_b = corpus.stats_baseline.sum(axis=0)
    total_v = corpus.stats_variant.sum(axis=0)
    swap_gain = corpus.stats_baseline - corpus.stats_variant  # moves to the variant if swapped
    threshold = abs(observed) * (1.0 - TIE_TOLERANCE)
    hits = 0
    rng = np.random.default_rng(seed)
    for _, bits in bit_chunks(rng, corpus.n, n_permutations):
        shift = bits @ swap_gain
        null = corpus.scores(total_v + shift) - corpus.scores(total_b - shift)
        hits += int(np.count_nonzero(np.abs(null) >= threshold))
    p = (1 + hits) / (n_permutations + 1)
    return PairedTest(
        name="paired approximate randomization (corpus)",
        statistic=observed,
        p_value=p,
        n=corpus.n,
        discordant=None,
        n_permutations=n_permutations,
    )
