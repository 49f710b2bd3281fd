"""One record per (experiment, metric): interval, test, effect size, power and a power guard.

The runner needs a single call that produces everything a verdict and its report rest on, so
that the interval, the p-value and the effect all describe the same paired difference on the
same examples. The underpowered guard flags comparisons too small to trust either way: fewer
than 100 examples, or (0/1 metrics) fewer than 20 discordant pairs, since only discordant
pairs carry information about the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.stats._checks import ArrayLike, as_pair
from engine.stats.corpus import CorpusStatistic, bca_interval_corpus, corpus_permutation_test
from engine.stats.effect import EffectSize, effect_size
from engine.stats.interval import Interval, bca_interval
from engine.stats.paired import PairedTest, discordant_pairs, is_binary, paired_test
from engine.stats.power import Power, power_analysis
from store.errors import BemctlError

MIN_EXAMPLES = 100
MIN_DISCORDANT = 20


@dataclass(frozen=True)
class MetricComparison:
    """Everything the verdict and the report need for one metric of one experiment.

    For a corpus metric the means are the corpus scores, and effect size and power are
    computed from the jackknife pseudo-values (each example's contribution to the score).
    """

    metric: str
    n: int
    baseline_mean: float
    variant_mean: float
    interval: Interval
    test: PairedTest
    effect: EffectSize
    power: Power
    binary: bool
    underpowered: bool
    underpowered_reason: str | None
    corpus: bool = False


def compare(
    metric: str,
    baseline: ArrayLike | None,
    variant: ArrayLike | None,
    *,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
    kind: str = "auto",
    target_power: float = 0.8,
    corpus: CorpusStatistic | None = None,
    n_permutations: int = 9_999,
) -> MetricComparison:
    """Compare variant to baseline on one metric; every random step uses default_rng(seed).

    Per-example metrics: BCa interval of mean(variant - baseline), `paired_test(kind)`.
    Corpus metrics (`corpus` given): BCa interval with the corpus score recomputed per
    resample and the paired approximate randomization test (see engine.stats.corpus); kind
    must then be "auto" or "permutation", and `baseline`/`variant` (per-example scores) may
    be None - when given they are only checked to have the corpus's length.
    """
    if corpus is not None:
        return _compare_corpus(
            metric,
            baseline,
            variant,
            corpus,
            n_resamples,
            alpha,
            seed,
            kind,
            target_power,
            n_permutations,
        )
    if baseline is None or variant is None:
        raise BemctlError(f"{metric}: baseline and variant scores are required")
    a, b = as_pair(baseline, variant)
    n = int(a.size)
    binary = is_binary(a, b)
    reasons = _size_reasons(n)
    if binary:
        bc = sum(discordant_pairs(a, b))
        if bc < MIN_DISCORDANT:
            reasons.append(f"only {bc} discordant pairs (< {MIN_DISCORDANT})")
    d = b - a
    return MetricComparison(
        metric=metric,
        n=n,
        baseline_mean=float(a.mean()),
        variant_mean=float(b.mean()),
        interval=bca_interval(d, n_resamples=n_resamples, alpha=alpha, seed=seed),
        test=paired_test(a, b, kind=kind, n_permutations=n_permutations, seed=seed),
        effect=effect_size(a, b),
        power=power_analysis(d, n=n, alpha=alpha, target_power=target_power),
        binary=binary,
        underpowered=bool(reasons),
        underpowered_reason="; ".join(reasons) or None,
    )


def _size_reasons(n: int) -> list[str]:
    return [f"n={n} < {MIN_EXAMPLES}"] if n < MIN_EXAMPLES else []


def _compare_corpus(
    metric: str,
    baseline: ArrayLike | None,
    variant: ArrayLike | None,
    corpus: CorpusStatistic,
    n_resamples: int,
    alpha: float,
    seed: int,
    kind: str,
    target_power: float,
    n_permutations: int,
) -> MetricComparison:
    if kind not in ("auto", "permutation"):
        raise BemctlError(
            f"{metric}: a corpus metric is tested by paired randomization (kind={kind!r} given)"
        )
    n = corpus.n
    if baseline is not None or variant is not None:
        if baseline is None or variant is None:
            raise BemctlError(f"{metric}: give both per-example score lists or neither")
        a, _ = as_pair(baseline, variant)
        if a.size != n:
            raise BemctlError(f"{metric}: {a.size} per-example scores for a corpus of {n}")
    base_score, var_score = corpus.corpus_scores()
    psi_b, psi_v = corpus.pseudo_values()
    reasons = _size_reasons(n)
    return MetricComparison(
        metric=metric,
        n=n,
        baseline_mean=base_score,
        variant_mean=var_score,
        interval=bca_interval_corpus(corpus, n_resamples=n_resamples, alpha=alpha, seed=seed),
        test=corpus_permutation_test(corpus, n_permutations=n_permutations, seed=seed),
        effect=effect_size(psi_b, psi_v),
        power=power_analysis(psi_v - psi_b, n=n, alpha=alpha, target_power=target_power),
        binary=False,
        underpowered=bool(reasons),
        underpowered_reason="; ".join(reasons) or None,
        corpus=True,
    )
