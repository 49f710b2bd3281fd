"""kron_delta: x·(Σ Aᵢ ⊗ Bᵢ)ᵀ without forming the product equals the explicit torch.kron path."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from triton_ops.kron_delta import kron_delta, kron_delta_reference, kron_flops_per_token

# (a_out, a_in), (b_out, b_in): non-square, unit dims, and both contraction orders
SHAPES = [
    ((3, 5), (4, 2)),
    ((7, 1), (2, 6)),
    ((2, 9), (5, 3)),
    ((6, 2), (4, 7)),
    ((1, 1), (3, 4)),
]


def _a_first(a_shape, b_shape) -> bool:
    (a_out, a_in), (b_out, b_in) = a_shape, b_shape
    return a_out * a_in * b_in + a_out * b_in * b_out <= a_in * b_in * b_out + a_out * a_in * b_out


def test_shapes_cover_both_contraction_orders() -> None:
    assert {_a_first(a, b) for a, b in SHAPES} == {True, False}


def _operands(a_shape, b_shape, terms: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, a_shape[1] * b_shape[1], generator=g, dtype=torch.float64)
    a = torch.randn(terms, *a_shape, generator=g, dtype=torch.float64)
    b = torch.randn(terms, *b_shape, generator=g, dtype=torch.float64)
    return x, a, b


def explicit(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    delta = sum(torch.kron(ai, bi) for ai, bi in zip(a, b, strict=True))  # (out, in)
    return x @ delta.t()


@pytest.mark.parametrize("terms", [1, 3])
@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
def test_forward_matches_explicit_kron(a_shape, b_shape, terms: int) -> None:
    x, a, b = _operands(a_shape, b_shape, terms)
    out = kron_delta(x, a, b)
    assert out.shape == (2, 3, a_shape[0] * b_shape[0])
    torch.testing.assert_close(out, explicit(x, a, b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("terms", [1, 2])
@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
def test_backward_matches_explicit_kron(a_shape, b_shape, terms: int) -> None:
    x, a, b = _operands(a_shape, b_shape, terms, seed=1)
    weights = torch.randn(2, 3, a_shape[0] * b_shape[0], dtype=torch.float64)
    grads = []
    for fn in (kron_delta, explicit):
        leaves = [t.clone().requires_grad_(True) for t in (x, a, b)]
        (fn(*leaves) * weights).sum().backward()
        grads.append([t.grad for t in leaves])
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_two_dimensional_factors_are_one_term() -> None:
    x, a, b = _operands((3, 5), (4, 2), terms=1)
    torch.testing.assert_close(kron_delta(x, a[0], b[0]), kron_delta(x, a, b))


def test_float32_and_any_leading_dims() -> None:
    x, a, b = (t.float() for t in _operands((4, 4), (2, 8), terms=2))
    flat = kron_delta_reference(x.reshape(-1, 32), a, b)
    torch.testing.assert_close(kron_delta(x, a, b).reshape(-1, 8), flat)
    torch.testing.assert_close(kron_delta(x[0, 0], a, b), flat[0])  # a single token


@pytest.mark.parametrize(
    "x_dim, a_shape, b_shape, message",
    [
        (11, (2, 3, 4), (2, 5, 3), "features"),
        (12, (2, 3, 4), (3, 5, 3), "terms"),
        (12, (3, 4), (1, 2, 5, 3), "must be"),
    ],
)
def test_rejects_inconsistent_shapes(x_dim, a_shape, b_shape, message) -> None:
    with pytest.raises(ValueError, match=message):
        kron_delta(torch.zeros(1, x_dim), torch.zeros(a_shape), torch.zeros(b_shape))


@pytest.mark.parametrize("a_shape, b_shape", SHAPES + [((8, 16), (16, 32))])
def test_flop_model_matches_flop_counter(a_shape, b_shape) -> None:
    x, a, b = _operands(a_shape, b_shape, terms=2)
    counter = FlopCounterMode(display=False)
    with counter:
        kron_delta(x, a, b)
    tokens = x.shape[0] * x.shape[1]
    assert counter.get_total_flops() == tokens * kron_flops_per_token(a_shape, b_shape, 2)
    # never more than the dense product, which is what not materialising ΔW buys
    dense = 2 * 2 * (a_shape[0] * b_shape[0]) * (a_shape[1] * b_shape[1])
    assert kron_flops_per_token(a_shape, b_shape, 2) <= 2 * dense
