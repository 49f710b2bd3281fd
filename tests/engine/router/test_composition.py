"""Composition and trust region: factor-only norm, projection bound, direction, counters."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.router.composition import (
    ProjectionStats,
    action_factors,
    compose,
    delta_weight,
    frobenius_norm,
    project,
)


def random_factors(seed, shapes, dtype=torch.float64, scale=1.0):
    """[(U (out, r), V (in, r)), ...] for one layer adapted by several experts."""
    g = torch.Generator().manual_seed(seed)
    out_f, in_f = shapes[0]
    return [
        (
            torch.randn(out_f, r, generator=g, dtype=dtype) * scale,
            torch.randn(in_f, r, generator=g, dtype=dtype),
        )
        for r in shapes[1]
    ]


def materialised(factors, weights):
    return sum(w * (u @ v.T) for (u, v), w in zip(factors, weights, strict=True))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    seed=st.integers(0, 10_000),
    out_f=st.integers(1, 24),
    in_f=st.integers(1, 24),
    ranks=st.lists(st.integers(1, 6), min_size=1, max_size=4),
)
def test_factor_norm_equals_materialised_norm(seed, out_f, in_f, ranks):
    factors = random_factors(seed, ((out_f, in_f), ranks))
    weights = torch.linspace(-1.0, 2.0, len(ranks)).tolist()
    us, vs = compose(factors, weights)
    expected = torch.linalg.norm(materialised(factors, weights), "fro")
    torch.testing.assert_close(frobenius_norm(us, vs), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(delta_weight(us, vs), materialised(factors, weights))


def test_norm_of_cancelling_composition_is_zero_not_nan():
    ((u, v),) = random_factors(0, ((5, 7), [3]))
    norm = frobenius_norm([u, -u], [v, v])
    assert norm.item() == pytest.approx(0.0, abs=1e-6)


def test_batched_norm_one_per_composition():
    g = torch.Generator().manual_seed(1)
    u, v = torch.randn(4, 6, 3, generator=g), torch.randn(4, 5, 3, generator=g)
    expected = torch.linalg.matrix_norm(u @ v.mT)
    torch.testing.assert_close(frobenius_norm([u], [v]), expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(5))
def test_projection_bounds_norm_and_keeps_direction(dtype, seed):
    factors = random_factors(seed, ((32, 48), [4, 8, 2]), dtype=dtype, scale=3.0)
    us, vs = compose(factors, [1.0, 0.5, -0.7])
    tau = 1.0
    before = frobenius_norm(us, vs)
    assert before.item() > tau
    stats = ProjectionStats()
    scale, (pus, pvs) = project(us, vs, tau, stats)
    after_exact = torch.linalg.norm(delta_weight(pus, pvs).double(), "fro")
    assert after_exact.item() <= tau * (1 + 1e-6)
    assert after_exact.item() == pytest.approx(tau, rel=1e-5)  # projected onto the boundary
    assert scale.item() == pytest.approx(tau / before.item(), rel=1e-6)
    flat_before = delta_weight(us, vs).double().flatten()
    flat_after = delta_weight(pus, pvs).double().flatten()
    cosine = torch.nn.functional.cosine_similarity(flat_before, flat_after, dim=0)
    assert cosine.item() == pytest.approx(1.0, abs=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(pvs, vs, strict=True))  # V untouched
    assert (stats.count, stats.total) == (1, 1)
    assert stats.max_norm == pytest.approx(before.item())


def test_no_projection_inside_the_region():
    factors = random_factors(3, ((8, 8), [2]), scale=0.01)
    us, vs = compose(factors)
    stats = ProjectionStats(count=2, total=5, max_norm=7.0)
    scale, (pus, pvs) = project(us, vs, tau=1.0, stats=stats)
    assert scale.item() == 1.0
    assert all(torch.equal(a, b) for a, b in zip(pus, us, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(pvs, vs, strict=True))
    assert stats.count == 2  # no projection counted
    assert stats.total == 6 and stats.max_norm == 7.0
    assert stats.rate == pytest.approx(2 / 6)
    assert stats.as_dict()["projections"] == 2


def test_stats_accumulate_over_calls():
    stats = ProjectionStats()
    for seed, scale in enumerate([0.01, 5.0, 0.02, 9.0]):
        us, vs = compose(random_factors(seed, ((6, 9), [3]), scale=scale))
        project(us, vs, tau=0.5, stats=stats)
    assert (stats.count, stats.total) == (2, 4)
    assert stats.max_norm > 0.5


def test_projection_is_differentiable():
    factors = random_factors(4, ((6, 5), [2, 3]), scale=4.0)
    leaves = [(u.clone().requires_grad_(), v.clone().requires_grad_()) for u, v in factors]
    _, (pus, pvs) = project(*compose(leaves), tau=1.0)
    delta_weight(pus, pvs).sum().backward()
    assert all(torch.isfinite(u.grad).all() and torch.isfinite(v.grad).all() for u, v in leaves)


def test_action_factors_keep_leading_components_and_scale():
    ((u, v),) = random_factors(5, ((10, 12), [8]))
    au, av = action_factors(u, v, rank_budget=0.25, bias_scale=1.5)
    assert au.shape == (10, 2) and av.shape == (12, 2)
    torch.testing.assert_close(au @ av.T, 1.5 * (u[:, :2] @ v[:, :2].T))
    full_u, full_v = action_factors(u, v, rank_budget=1.0, bias_scale=1.0)
    torch.testing.assert_close(full_u @ full_v.T, u @ v.T)
    assert action_factors(u, v, rank_budget=0.3, bias_scale=1.0)[0].shape[1] == math.ceil(0.3 * 8)


def test_invalid_inputs():
    ((u, v),) = random_factors(6, ((4, 5), [2]))
    with pytest.raises(ValueError):
        frobenius_norm([u], [v[:, :1]])
    with pytest.raises(ValueError):
        compose([(u, v)], [1.0, 2.0])
    with pytest.raises(ValueError):
        compose([])
    with pytest.raises(ValueError):
        project([u], [v], tau=0.0)
    with pytest.raises(ValueError):
        project([u.expand(2, 4, 2)], [v.expand(2, 5, 2)], tau=1.0)
