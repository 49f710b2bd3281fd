"""Corpus-level statistics: the score is recomputed on each resample, not averaged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from engine.stats import CorpusStatistic, bca_interval, bca_interval_corpus, corpus_permutation_test
from engine.stats.corpus import corpus_bootstrap
from engine.stats.paired import sign_flip_test
from store.errors import BemctlError


def _precision(summed: np.ndarray) -> np.ndarray:
    """Micro-averaged precision sum(tp) / sum(tp + fp) over columns (tp, fp)."""
    return summed[:, 0] / (summed[:, 0] + summed[:, 1])


def _toy_corpus(seed: int = 0, n: int = 60) -> CorpusStatistic:
    """Per-sentence (tp, fp) counts; sentence lengths vary, so micro != mean of per-sentence."""
    rng = np.random.default_rng(seed)
    length = rng.integers(1, 30, n)
    tp_b = rng.binomial(length, 0.8 - 0.015 * length)  # long sentences are harder
    tp_v = rng.binomial(length, 0.9 - 0.015 * length)
    stats_b = np.column_stack([tp_b, length - tp_b])
    stats_v = np.column_stack([tp_v, length - tp_v])
    return CorpusStatistic(stats_b, stats_v, _precision, name="toy precision")


def test_corpus_bootstrap_equals_brute_force_loop() -> None:
    """Same generator draws, one resample at a time, statistic summed from scratch."""
    corpus = _toy_corpus()
    n, b = corpus.n, 300
    idx = np.random.default_rng(9).integers(0, n, (b, n))
    brute = np.array(
        [
            _precision(corpus.stats_variant[i].sum(0, keepdims=True))[0]
            - _precision(corpus.stats_baseline[i].sum(0, keepdims=True))[0]
            for i in idx
        ]
    )
    got = corpus_bootstrap(corpus, b, np.random.default_rng(9))
    np.testing.assert_allclose(got, brute, rtol=0, atol=1e-15)


@pytest.mark.parametrize("seed, alpha", [(0, 0.05), (5, 0.1)])
def test_corpus_bca_matches_brute_force_scipy_paired_bootstrap(seed: int, alpha: float) -> None:
    """scipy's paired bootstrap materialises every resample and jackknifes by explicit
    deletion - a brute-force reference. It draws `integers(0, n, (B, n))` like we do, so the
    comparison is exact on the same generator state (integer counts: sums are exact)."""
    corpus = _toy_corpus(seed)
    sb, sv = corpus.stats_baseline, corpus.stats_variant

    def statistic(tp_b, fp_b, tp_v, fp_v, axis=-1):
        tb, fb, tv, fv = (x.sum(axis=axis) for x in (tp_b, fp_b, tp_v, fp_v))
        return tv / (tv + fv) - tb / (tb + fb)

    ref = sps.bootstrap(
        (sb[:, 0], sb[:, 1], sv[:, 0], sv[:, 1]),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=2000,
        confidence_level=1 - alpha,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    got = bca_interval_corpus(corpus, n_resamples=2000, alpha=alpha, seed=seed)
    assert got.low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert got.high == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    base, var = corpus.corpus_scores()
    assert got.estimate == pytest.approx(var - base)
    assert got.method == "BCa (corpus)"


def test_micro_precision_is_not_the_mean_of_sentence_precisions() -> None:
    """Guard on the toy metric itself: otherwise the corpus path would test nothing new."""
    corpus = _toy_corpus()
    base, _ = corpus.corpus_scores()
    per_sentence = _precision(corpus.stats_baseline)
    assert abs(base - per_sentence.mean()) > 0.02


def _mean_as_corpus(base: np.ndarray, var: np.ndarray) -> CorpusStatistic:
    """The mean as a corpus metric: statistics (score, 1), score = sum / count."""
    ones = np.ones_like(base)
    return CorpusStatistic(
        np.column_stack([base, ones]), np.column_stack([var, ones]), lambda s: s[:, 0] / s[:, 1]
    )


def test_mean_written_as_corpus_metric_reproduces_bca_interval() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, 80)
    var = np.clip(base + rng.normal(0.05, 0.2, 80), 0, 1)
    corpus = _mean_as_corpus(base, var)
    got = bca_interval_corpus(corpus, n_resamples=2000, seed=4)
    ref = bca_interval(var - base, n_resamples=2000, seed=4)
    assert got.low == pytest.approx(ref.low, rel=1e-9)
    assert got.high == pytest.approx(ref.high, rel=1e-9)
    assert got.acceleration == pytest.approx(ref.acceleration, rel=1e-6)


def test_mean_written_as_corpus_metric_gives_sign_flip_p_value() -> None:
    """For a mean, swapping an example's outputs is a sign flip of d_i (same coin stream)."""
    rng = np.random.default_rng(4)
    base = rng.uniform(0, 1, 50)
    var = base + rng.normal(0.03, 0.1, 50)
    got = corpus_permutation_test(_mean_as_corpus(base, var), n_permutations=4999, seed=1)
    ref = sign_flip_test(var - base, 4999, seed=1)
    assert got.p_value == ref.p_value
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.n_permutations == 4999
    assert got.name == "paired approximate randomization (corpus)"


def test_pseudo_values_of_a_mean_are_the_scores() -> None:
    rng = np.random.default_rng(5)
    base, var = rng.uniform(0, 1, 20), rng.uniform(0, 1, 20)
    psi_b, psi_v = _mean_as_corpus(base, var).pseudo_values()
    np.testing.assert_allclose(psi_b, base, atol=1e-12)
    np.testing.assert_allclose(psi_v, var, atol=1e-12)


def test_clear_improvement_is_significant_and_identical_systems_are_not() -> None:
    corpus = _toy_corpus(1, n=200)
    test = corpus_permutation_test(corpus, seed=0)
    assert test.p_value < 0.01
    assert test.statistic > 0
    same = CorpusStatistic(corpus.stats_baseline, corpus.stats_baseline, _precision)
    assert corpus_permutation_test(same, n_permutations=999).p_value == 1.0
    iv = bca_interval_corpus(same, n_resamples=500)
    assert iv.degenerate and iv.low == iv.high == 0.0


def test_same_seed_same_corpus_results() -> None:
    corpus = _toy_corpus(2)
    assert bca_interval_corpus(corpus, 1000, seed=1) == bca_interval_corpus(corpus, 1000, seed=1)
    assert corpus_permutation_test(corpus, 999, seed=1) == corpus_permutation_test(
        corpus, 999, seed=1
    )


def test_corpus_statistic_validation() -> None:
    good = np.ones((5, 2))
    with pytest.raises(BemctlError, match="differ in shape"):
        CorpusStatistic(good, np.ones((4, 2)), _precision)
    with pytest.raises(BemctlError, match="NaN"):
        CorpusStatistic(good, np.full((5, 2), np.nan), _precision)
    with pytest.raises(BemctlError, match="at least 2"):
        CorpusStatistic(np.ones((1, 2)), np.ones((1, 2)), _precision)
    with pytest.raises(BemctlError, match="score must map"):
        CorpusStatistic(good, good, lambda s: s).corpus_scores()
    zeros = CorpusStatistic(np.zeros((5, 2)), np.zeros((5, 2)), _precision)
    with pytest.raises(BemctlError, match="NaN or inf"), np.errstate(invalid="ignore"):
        zeros.corpus_scores()


def test_corpus_interval_shares_the_resample_floor() -> None:
    with pytest.raises(BemctlError, match="n_resamples must be at least 100"):
        bca_interval_corpus(_toy_corpus(1), n_resamples=1)
