"""film: the fused Triton kernels, run by the interpreter, against a float64 reference.

γ and β straddle their bounds so both the clamped and the pass-through branches (and their
zero/non-zero gradients) are exercised; broadcast γ, β check the reduction of dγ, dβ.
"""

from __future__ import annotations

import pytest
import torch

from tests.triton_ops.helpers import check_against_float64, seed_of
from triton_ops.film import film, film_reference

pytestmark = pytest.mark.usefixtures("triton_kernels")

BOUNDS = ((0.5, 2.0), (-0.5, 0.5))
CASES = [  # h's shape, γ's and β's shape
    ((5,), (5,)),
    ((2, 7, 33), (2, 7, 33)),
    ((2, 7, 33), (2, 1, 33)),  # one γ per sequence and channel
    ((3, 2, 5, 17), (1, 2, 1, 17)),
    ((2, 1, 3, 2, 9), (2, 1, 3, 2, 9)),  # more than three leading dims
]


def _operands(h_shape, g_shape, seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(h_shape, generator=g)
    gamma = 1.0 + 1.5 * torch.randn(g_shape, generator=g)  # about half outside [0.5, 2]
    beta = 0.8 * torch.randn(g_shape, generator=g)  # about half outside [-0.5, 0.5]
    return [h, gamma, beta]


def _check(operands, dtype, seed, grads=None):
    check_against_float64(
        film,
        film_reference,
        operands,
        dtype=dtype,
        seed=seed,
        extra=(BOUNDS,),
        grads=grads or (True,) * len(operands),
        names=("h", "gamma", "beta"),
        node="FilmBackward",
    )


@pytest.mark.parametrize("h_shape, g_shape", CASES)
def test_fp32_forward_and_backward_match_float64(h_shape, g_shape) -> None:
    seed = seed_of(h_shape, g_shape)
    _check(_operands(h_shape, g_shape, seed), torch.float32, seed)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_within_its_rounding(dtype: torch.dtype) -> None:
    _check(_operands((2, 7, 33), (2, 1, 33), seed=3), dtype, seed=3)


def test_sliced_gamma_and_transposed_h_as_the_film_variant_passes_them() -> None:
    g = torch.Generator().manual_seed(8)
    h = torch.randn(2, 33, 7, generator=g).transpose(1, 2)  # (B, T, d) view, not contiguous
    raw = 1.0 + 1.5 * torch.randn(2, 7, 3, 33, generator=g)  # controller output (B, T, L, d)
    raw[:, :, 2] = 0.8 * raw[:, :, 2] - 0.8  # β's channel: about half inside [-0.5, 0.5]
    gamma, beta = raw[:, :, 1], raw[:, :, 2]  # slices, as ResidualFilmModel's hook takes them
    assert not any(t.is_contiguous() for t in (h, gamma, beta))
    _check([h, gamma, beta], torch.float32, seed=8)


def test_no_gradient_computed_for_a_frozen_h() -> None:
    operands = _operands((2, 7, 33), (2, 1, 33), seed=6)
    _check(operands, torch.float32, seed=6, grads=(False, True, True))
