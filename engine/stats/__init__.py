"""Paired statistics for one (experiment, metric): BCa CI, paired test, BH-FDR, effect, power.

Hand-written on numpy (scipy only for distribution functions) so that the bootstrap is
chunked - memory stays at a few MiB for any n - and so the formulas reviewers ask about are
in plain sight. Every routine is checked in tests/engine/stats against scipy, statsmodels
or pingouin.

    compare(...)            everything below for one metric, as one MetricComparison
    bca_interval(...)       BCa interval of the mean paired difference
    bca_interval_corpus(.)  BCa interval of a corpus-level metric (BLEU/chrF style)
    paired_test(...)        McNemar exact / paired t / sign-flip permutation
    benjamini_hochberg(...) BH-FDR across a family of tests
    effect_size(...)        d_z and Hedges' g
    power_analysis(...)     power, minimum detectable effect, n needed
"""

from engine.stats._checks import MIN_RESAMPLES
from engine.stats.compare import MetricComparison, compare
from engine.stats.corpus import (
    CorpusStatistic,
    bca_interval_corpus,
    corpus_permutation_test,
)
from engine.stats.effect import EffectSize, effect_size
from engine.stats.fdr import FdrResult, benjamini_hochberg
from engine.stats.interval import Interval, bca_interval
from engine.stats.paired import PairedTest, is_binary, paired_test
from engine.stats.power import Power, power_analysis

__all__ = [
    "MIN_RESAMPLES",
    "CorpusStatistic",
    "EffectSize",
    "FdrResult",
    "Interval",
    "MetricComparison",
    "PairedTest",
    "Power",
    "bca_interval",
    "bca_interval_corpus",
    "benjamini_hochberg",
    "compare",
    "corpus_permutation_test",
    "effect_size",
    "is_binary",
    "paired_test",
    "power_analysis",
]
