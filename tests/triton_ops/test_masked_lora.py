"""masked_lora: the fused Triton kernel, run by the interpreter, against a float64 reference.

Every launch writes into NaN-poisoned buffers (`poisoned()`), so a finite result proves that
every element was written; gradients are compared with the reference's autograd in float64.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.variants.base import LoraLayer
from tests.triton_ops.helpers import assert_close_to, check_against_float64, seed_of
from triton_ops import dispatch
from triton_ops._buffers import poisoned
from triton_ops.masked_lora import masked_lora, masked_lora_reference

pytestmark = pytest.mark.usefixtures("triton_kernels")

CASES = [  # leading dims of x (tokens), in, out, r: odd sizes, r below and at a tile edge
    ((1,), 24, 17, 3),
    ((7,), 17, 24, 8),
    ((3, 11), 24, 17, 3),
]
NAMES = ("x", "weight", "bias", "lora_v", "lora_u", "mask")


def _operands(lead, k, o, r, mask_kind, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, k, generator=g)
    weight = torch.randn(k, o, generator=g) / k**0.5
    bias = torch.randn(o, generator=g)
    v = torch.randn(k, r, generator=g) / k**0.5
    u = torch.randn(o, r, generator=g)
    mask = None
    if mask_kind == "per_token":
        mask = (torch.rand(*lead, r, generator=g) > 0.4).float()
    elif mask_kind == "broadcast":  # one mask per sequence, as decode steps pass (B, 1, r)
        mask = (torch.rand(*lead[:-1], 1, r, generator=g) > 0.4).float()
    return [x, weight, bias, v, u, mask]


def _check(operands, dtype, grads, seed, scaling=0.7):
    check_against_float64(
        masked_lora,
        masked_lora_reference,
        operands,
        dtype=dtype,
        seed=seed,
        extra=(scaling,),
        grads=grads,
        names=NAMES,
        node="MaskedLoraBackward",
    )


@pytest.mark.parametrize("mask_kind", ["none", "per_token", "broadcast"])
@pytest.mark.parametrize("lead, k, o, r", CASES)
def test_fp32_forward_and_backward_match_float64(lead, k, o, r, mask_kind) -> None:
    seed = seed_of(lead, k, o, r, mask_kind)
    operands = _operands(lead, k, o, r, mask_kind, seed)
    grads = (True, False, False, True, True, mask_kind != "none")  # V1 trains its mask router
    _check(operands, torch.float32, grads, seed)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_within_its_rounding(dtype: torch.dtype) -> None:
    operands = _operands((3, 11), 24, 17, 8, "per_token", seed=5)
    _check(operands, dtype, (True, False, False, True, True, True), seed=5)


def test_non_contiguous_inputs_are_read_through_their_strides() -> None:
    g = torch.Generator().manual_seed(7)
    n, k, o, r = 9, 17, 24, 3
    x = torch.randn(k, 2 * n, generator=g)[:, ::2].t()  # transposed and strided
    weight = torch.randn(o, k, generator=g).t() / k**0.5  # nn.Linear's weight, transposed
    bias = torch.randn(2 * o, generator=g)[::2]
    v = (torch.randn(k, 2 * r, generator=g) / k**0.5)[:, 1::2]
    u = torch.randn(r, o, generator=g).t()
    mask = (torch.rand(r, n, generator=g) > 0.5).float().t()
    operands = [x, weight, bias, v, u, mask]
    assert not any(t.is_contiguous() for t in operands)
    _check(operands, torch.float32, (True, False, False, True, True, True), seed=7)


def test_frozen_base_that_requires_grad_still_gets_exact_gradients() -> None:
    operands = _operands((7,), 17, 24, 8, "per_token", seed=11)
    _check(operands, torch.float32, (True, True, True, True, True, False), seed=11)


def test_lora_layer_trains_the_same_through_either_path() -> None:
    """The variants' LoraLayer (mask from a router, so it needs a gradient) on both paths."""
    torch.manual_seed(3)
    base = nn.Linear(24, 17).requires_grad_(False)  # frozen, as AdapterModel leaves it
    layer = LoraLayer(base, rank=8, scaling=0.5, block_index=0)
    nn.init.normal_(layer.lora_u)  # zero at init would hide dV
    x = torch.randn(2, 5, 24)
    scores = torch.randn(2, 1, 8, requires_grad=True)
    results = []
    for kernels in ("torch", "triton"):
        dispatch.configure(kernels)
        layer.zero_grad()
        scores.grad = None
        layer.mask = torch.sigmoid(scores).expand(2, 5, 8)
        with poisoned():
            y = layer(x)
            (y * torch.linspace(-1, 1, 17)).sum().backward()
        results.append([y, layer.lora_v.grad, layer.lora_u.grad, scores.grad])
    for name, got, want in zip(("y", "dV", "dU", "dscores"), results[1], results[0], strict=True):
        assert_close_to(got, want.double(), torch.float32, name)
