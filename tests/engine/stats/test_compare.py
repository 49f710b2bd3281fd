"""compare(): one record per metric, consistent with the parts it is built from."""

from __future__ import annotations

import numpy as np
import pytest

from engine.stats import (
    CorpusStatistic,
    MetricComparison,
    bca_interval,
    bca_interval_corpus,
    compare,
    corpus_permutation_test,
    effect_size,
    paired_test,
    power_analysis,
)
from store.errors import BemctlError


def _binary(n: int, both: int, b: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    neither = n - both - b - c
    base = np.array([1] * both + [1] * b + [0] * c + [0] * neither, dtype=float)
    var = np.array([1] * both + [0] * b + [1] * c + [0] * neither, dtype=float)
    order = np.random.default_rng(seed).permutation(n)
    return base[order], var[order]


def test_continuous_record_is_built_from_the_parts() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 300)
    var = np.clip(base + rng.normal(0.03, 0.1, 300), 0, 1)
    got = compare("chrf", base, var, n_resamples=2000, seed=4)
    assert isinstance(got, MetricComparison)
    assert got.metric == "chrf" and got.n == 300 and not got.binary and not got.corpus
    assert got.baseline_mean == pytest.approx(base.mean())
    assert got.variant_mean == pytest.approx(var.mean())
    assert got.interval == bca_interval(var - base, n_resamples=2000, seed=4)
    assert got.test == paired_test(base, var, seed=4)
    assert got.test.name == "paired t-test"
    assert got.effect == effect_size(base, var)
    assert got.power == power_analysis(var - base, n=300)
    assert not got.underpowered and got.underpowered_reason is None


def test_binary_metric_uses_mcnemar_and_enough_discordant_pairs_pass() -> None:
    base, var = _binary(400, 250, 10, 30)
    got = compare("exact_match", base, var, n_resamples=2000)
    assert got.binary and got.test.name == "McNemar exact"
    assert got.test.discordant == (10, 30)
    assert not got.underpowered


def test_small_n_is_underpowered() -> None:
    rng = np.random.default_rng(1)
    base, var = rng.uniform(0, 1, 60), rng.uniform(0, 1, 60)
    got = compare("chrf", base, var, n_resamples=500)
    assert got.underpowered and got.underpowered_reason == "n=60 < 100"


def test_few_discordant_pairs_are_underpowered() -> None:
    base, var = _binary(300, 200, 4, 8)
    got = compare("exact_match", base, var, n_resamples=500)
    assert got.underpowered
    assert got.underpowered_reason == "only 12 discordant pairs (< 20)"
    both = compare("exact_match", *_binary(60, 40, 2, 3), n_resamples=500)
    assert both.underpowered_reason == "n=60 < 100; only 5 discordant pairs (< 20)"


def test_kind_is_passed_through() -> None:
    base, var = _binary(200, 100, 20, 35)
    got = compare("exact_match", base, var, kind="permutation", n_resamples=500)
    assert got.test.name == "sign-flip permutation" and got.test.n_permutations == 9_999


def _precision(summed: np.ndarray) -> np.ndarray:
    return summed[:, 0] / (summed[:, 0] + summed[:, 1])


def test_corpus_metric_record() -> None:
    rng = np.random.default_rng(2)
    n = 150
    length = rng.integers(1, 25, n)
    tp_b, tp_v = rng.binomial(length, 0.5), rng.binomial(length, 0.6)
    corpus = CorpusStatistic(
        np.column_stack([tp_b, length - tp_b]), np.column_stack([tp_v, length - tp_v]), _precision
    )
    got = compare("precision", None, None, corpus=corpus, n_resamples=2000, seed=1)
    base, var = corpus.corpus_scores()
    assert got.corpus and not got.binary and got.n == n
    assert (got.baseline_mean, got.variant_mean) == (base, var)
    assert got.interval == bca_interval_corpus(corpus, n_resamples=2000, seed=1)
    assert got.test == corpus_permutation_test(corpus, seed=1)
    psi_b, psi_v = corpus.pseudo_values()
    assert got.effect == effect_size(psi_b, psi_v)
    assert got.power.effect == pytest.approx(effect_size(psi_b, psi_v).d_z)
    assert not got.underpowered

    with pytest.raises(BemctlError, match="paired randomization"):
        compare("precision", None, None, corpus=corpus, kind="t")
    with pytest.raises(BemctlError, match="corpus of 150"):
        compare("precision", np.ones(10), np.ones(10), corpus=corpus)


def test_refuses_missing_scores() -> None:
    with pytest.raises(BemctlError, match="required"):
        compare("chrf", None, [0.1, 0.2])
