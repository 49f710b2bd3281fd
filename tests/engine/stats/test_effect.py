"""Effect sizes vs pingouin."""

from __future__ import annotations

import numpy as np
import pingouin as pg
import pytest

from engine.stats import effect_size
from store.errors import BemctlError


@pytest.mark.parametrize("seed, n", [(0, 10), (1, 60), (2, 500)])
def test_d_z_and_hedges_g_match_pingouin(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0, 1, n)
    variant = baseline * 0.8 + rng.normal(0.15, 0.2, n)
    got = effect_size(baseline, variant)
    d = variant - baseline
    assert got.d_z == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
    ref_dz = pg.compute_effsize(variant, baseline, paired=True, eftype="cohen_dz")
    ref_g = pg.compute_effsize(variant, baseline, paired=True, eftype="hedges")
    assert got.d_z == pytest.approx(ref_dz, rel=1e-12)
    assert got.hedges_g == pytest.approx(ref_g, rel=1e-12)
    assert "d_z" in got.formula and "hedges_g" in got.formula


def test_sign_follows_variant_minus_baseline() -> None:
    baseline = np.array([0.1, 0.4, 0.2, 0.5])
    variant = np.array([0.3, 0.5, 0.4, 0.9])
    forward, backward = effect_size(baseline, variant), effect_size(variant, baseline)
    assert forward.d_z > 0 and forward.hedges_g > 0
    assert backward.d_z == pytest.approx(-forward.d_z)
    assert backward.hedges_g == pytest.approx(-forward.hedges_g)


def test_d_z_textbook_value() -> None:
    got = effect_size([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])  # d = 1, 2, 3: mean 2, sd 1
    assert got.d_z == pytest.approx(2.0)


def test_undefined_effects_are_none() -> None:
    x = np.array([0.7, 0.3, 0.9, 0.11])
    shifted = effect_size(x, x + 0.1)  # constant difference (up to rounding)
    assert shifted.d_z is None
    assert shifted.hedges_g is not None
    flat = effect_size([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert flat.d_z is None and flat.hedges_g is None


def test_refuses_mismatched_input() -> None:
    with pytest.raises(BemctlError, match="differ in length"):
        effect_size([0.1, 0.2], [0.1])
