"""Benjamini-Hochberg vs statsmodels, the design document's FDR simulation, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from engine.stats import benjamini_hochberg
from store.errors import BemctlError

P_FAMILY = [0.041, 0.010, 0.040, 0.012, 0.011, 0.30, 0.0004, 0.049]


def test_known_family_has_four_rejections() -> None:
    got = benjamini_hochberg(P_FAMILY, alpha=0.05)
    reject, adjusted, _, _ = multipletests(P_FAMILY, alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(got.adjusted, adjusted, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.rejected, reject)
    assert int(got.rejected.sum()) == 4
    np.testing.assert_array_equal(np.flatnonzero(got.rejected), [1, 3, 4, 6])  # 0.0004..0.012
    assert got.family_size == 8 and got.alpha == 0.05


def test_alpha_changes_rejections() -> None:
    assert int(benjamini_hochberg(P_FAMILY, alpha=0.01).rejected.sum()) == 1
    assert int(benjamini_hochberg(P_FAMILY, alpha=0.30).rejected.sum()) == 8


def test_matches_statsmodels_on_1000_random_families() -> None:
    rng = np.random.default_rng(0)
    for i in range(1000):
        m = int(rng.integers(1, 80))
        p = rng.uniform(0, 1, m) ** rng.uniform(0.5, 4)  # from flat to many small p-values
        if i % 3 == 0:
            p = np.round(p, 2)  # ties
        if i % 5 == 0:
            p[rng.integers(0, m, max(1, m // 4))] = p[0]  # more ties, including exact repeats
        if i % 7 == 0:
            p[0] = 0.0
            p[-1] = 1.0
        alpha = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
        got = benjamini_hochberg(p, alpha=alpha)
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
        np.testing.assert_allclose(got.adjusted, adjusted, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(got.rejected, reject)
        assert got.family_size == m


@pytest.mark.slow
def test_observed_fdr_is_controlled() -> None:
    """The design check: 800 true nulls + 200 alternatives (z ~ N(3, 1), one-sided p), FDR
    averaged over 300 repetitions must stay <= 1.1 alpha (BH guarantees m0/m alpha = 0.04)."""
    alpha = 0.05
    rng = np.random.default_rng(1)
    fdp, power = [], []
    for _ in range(300):
        null = rng.uniform(0, 1, 800)
        alt = sps.norm.sf(rng.normal(3.0, 1.0, 200))
        got = benjamini_hochberg(np.concatenate([null, alt]), alpha=alpha)
        false = int(got.rejected[:800].sum())
        fdp.append(false / max(1, int(got.rejected.sum())))
        power.append(got.rejected[800:].mean())
    assert np.mean(fdp) <= 1.1 * alpha
    assert np.mean(power) > 0.3  # and it does reject things: not vacuous


def test_empty_family() -> None:
    got = benjamini_hochberg([])
    assert got.family_size == 0
    assert got.adjusted.size == 0 and got.rejected.size == 0
    assert got.rejected.dtype == bool


@pytest.mark.parametrize("bad", [[0.01, float("nan")], [0.01, 1.5], [-0.1, 0.2]])
def test_refuses_bad_p_values(bad: list[float]) -> None:
    with pytest.raises(BemctlError, match=r"\[0, 1\]"):
        benjamini_hochberg(bad)


def test_refuses_bad_alpha_and_shape() -> None:
    with pytest.raises(BemctlError, match="alpha"):
        benjamini_hochberg([0.1], alpha=0.0)
    with pytest.raises(BemctlError, match="1-D"):
        benjamini_hochberg([[0.1, 0.2]])


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_adjusted_p_values_are_monotone_in_raw_p_values(p: list[float]) -> None:
    raw = np.array(p)
    got = benjamini_hochberg(raw)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(got.adjusted[order]) >= 0)
    assert np.all(got.adjusted >= raw) and np.all(got.adjusted <= 1)
    # equal raw p-values get equal adjusted p-values
    for value in np.unique(raw):
        assert np.ptp(got.adjusted[raw == value]) == 0
