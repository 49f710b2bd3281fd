"""kron_delta: the Triton kernels, run by the interpreter, against a float64 reference.

Factor shapes cover both contraction orders (so both canonical views of the kernels), unit
dims and odd sizes; buffers are NaN-poisoned; gradients (dx, dA, dB) vs the reference's autograd.
"""

from __future__ import annotations

import pytest
import torch

from tests.triton_ops.helpers import check_against_float64, seed_of
from triton_ops.kron_delta import _a_first, kron_delta, kron_delta_reference

pytestmark = pytest.mark.usefixtures("triton_kernels")

CASES = [  # leading dims of x (tokens), (a_out, a_in), (b_out, b_in), terms
    ((1,), (3, 5), (4, 2), 1),
    ((7,), (7, 1), (2, 6), 2),
    ((3, 11), (2, 9), (5, 3), 3),
    ((7,), (6, 2), (4, 7), 1),
    ((2, 3), (1, 1), (3, 4), 2),
]


def test_cases_cover_both_contraction_orders() -> None:
    assert {_a_first(a, b) for _, a, b, _ in CASES} == {True, False}


def _operands(lead, a_shape, b_shape, terms, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, a_shape[1] * b_shape[1], generator=g)
    a = torch.randn(terms, *a_shape, generator=g)
    b = torch.randn(terms, *b_shape, generator=g)
    return [x, a, b]


def _check(operands, dtype, seed, grads=None):
    check_against_float64(
        kron_delta,
        kron_delta_reference,
        operands,
        dtype=dtype,
        seed=seed,
        extra=(),
        grads=grads or (True,) * len(operands),
        names=("x", "A", "B"),
        node="KronDeltaBackward",
    )


@pytest.mark.parametrize("lead, a_shape, b_shape, terms", CASES)
def test_fp32_forward_and_backward_match_float64(lead, a_shape, b_shape, terms) -> None:
    seed = seed_of(lead, a_shape, b_shape, terms)
    _check(_operands(lead, a_shape, b_shape, terms, seed), torch.float32, seed)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_within_its_rounding(dtype: torch.dtype) -> None:
    _check(_operands((3, 11), (3, 5), (4, 3), 2, seed=4), dtype, seed=4)


def test_non_contiguous_inputs_and_two_dimensional_factors() -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(12, 14, generator=g)[:, ::2].t()  # (7 tokens, 12 features), strided
    a = torch.randn(4, 3, generator=g).t()  # one term, (a_out, a_in) = (3, 4), transposed
    b = torch.randn(3, 5, generator=g)[:, ::2]  # (b_out, b_in) = (3, 3), strided
    assert not any(t.is_contiguous() for t in (x, a, b))
    _check([x, a, b], torch.float32, seed=9)


def test_gradient_only_for_the_factors_that_need_it() -> None:
    operands = _operands((7,), (6, 2), (4, 7), 2, seed=13)  # the "B first" order
    _check(operands, torch.float32, seed=13, grads=(False, True, False))
