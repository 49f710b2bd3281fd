"""Comparison helpers shared by the kernel tests."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch

from triton_ops._buffers import poisoned

# fp32: the bound. Half precision: a few units of rounding (u = 2⁻¹¹ for fp16, 2⁻⁸ for
# bf16); inputs, the intermediate (x·V, L·X) and the output are each rounded once, as in eager.
REL_TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 3e-2}


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|: the error relative to the result's scale."""
    scale = want.abs().max().item() or 1.0
    return (got.double() - want).abs().max().item() / scale


def assert_close_to(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """Every element finite (a NaN-poisoned element left unwritten fails here), then within tol."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    assert torch.isfinite(got).all(), f"{what}: {(~torch.isfinite(got)).sum()} non-finite"
    err = rel_err(got, want)
    assert err <= REL_TOL[dtype], f"{what}: relative error {err:.2e} > {REL_TOL[dtype]:.0e}"


def leaves(tensors, dtype: torch.dtype, grads: tuple[bool, ...]) -> list:
    """Copies as `dtype` leaves (None stays None); grads[i] says which require grad."""
    out = []
    for t, g in zip(tensors, grads, strict=True):
        out.append(None if t is None else t.detach().to(dtype).requires_grad_(g))
    return out


def ran_through(y: torch.Tensor, node: str) -> bool:
    """Whether autograd node `node` (e.g. "MaskedLoraBackward") produced y: proves the path."""
    seen, todo = set(), [y.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if fn.name() == node:
            return True
        todo.extend(f for f, _ in fn.next_functions)
    return False


def seed_of(*parts: object) -> int:
    """A stable per-parametrization seed (hash() of a str changes between processes)."""
    return zlib.crc32(repr(parts).encode())


def check_against_float64(
    op: Callable[..., torch.Tensor],
    reference: Callable[..., torch.Tensor],
    operands: Sequence[torch.Tensor | None],
    *,
    dtype: torch.dtype,
    grads: tuple[bool, ...],
    names: tuple[str, ...],
    node: str,
    seed: int,
    extra: tuple = (),
) -> None:
    """op(*operands, *extra) in `dtype` vs reference in float64: output and the gradients of
    the operands flagged in `grads`, every kernel buffer NaN-poisoned before its launch."""
    ours = leaves(operands, dtype, grads)
    ref = leaves(operands, torch.float64, grads)
    with poisoned():
        y = op(*ours, *extra)
        assert ran_through(y, node), f"{node} is not in the graph: the kernel path did not run"
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
        got = torch.autograd.grad(y, [t for t, g in zip(ours, grads, strict=True) if g], dy)
    want_y = reference(*ref, *extra)
    wanted = [t for t, g in zip(ref, grads, strict=True) if g]
    want = torch.autograd.grad(want_y, wanted, dy.double())
    assert_close_to(y, want_y, dtype, "output")
    flagged = [n for n, g in zip(names, grads, strict=True) if g]
    for name, p, q in zip(flagged, got, want, strict=True):
        assert_close_to(p, q, dtype, f"d{name}")
