"""Triton kernels of film (imports triton; load only on the kernel path).

Forward reads h, γ, β once, clamps in registers and writes h' once (eager: clamp γ, clamp β,
multiply, add — four passes with three temporaries). Backward is one pass too: dh = clamp(γ)·dy,
dγ = dy·h where γ is inside its range and dβ = dy where β is, each only if needed.

Operands come as same-shape views of up to three leading dims plus channels, with their own
strides (0 where γ, β broadcast), so a (B, 1, d) or sliced γ is never copied. dγ and dβ are
written at h's shape; the caller's expand reduces them to γ's and β's shapes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from triton_ops._buffers import new_buffer
from triton_ops._tl import check_device

BLOCK_ROWS = 16
BLOCK_CHANNELS = 64


@triton.jit
def _offsets(base, row, col, s0, s1, s2, s3, L1, L2):
    """Pointer of element (row, col) of a 4-D view whose leading dims are flattened to rows."""
    i0 = row // (L1 * L2)
    i1 = (row // L2) % L1
    i2 = row % L2
    return base + i0[:, None] * s0 + i1[:, None] * s1 + i2[:, None] * s2 + col[None, :] * s3


@triton.jit
def _film_fwd_kernel(
    h_ptr,
    hs0,
    hs1,
    hs2,
    hs3,
    g_ptr,
    gs0,
    gs1,
    gs2,
    gs3,
    b_ptr,
    bs0,
    bs1,
    bs2,
    bs3,
    o_ptr,
    ROWS,
    L1,
    L2,
    D,
    g_lo,
    g_hi,
    b_lo,
    b_hi,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    col = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    keep = (row[:, None] < ROWS) & (col[None, :] < D)
    h = tl.load(_offsets(h_ptr, row, col, hs0, hs1, hs2, hs3, L1, L2), mask=keep, other=0.0)
    g = tl.load(_offsets(g_ptr, row, col, gs0, gs1, gs2, gs3, L1, L2), mask=keep, other=1.0)
    b = tl.load(_offsets(b_ptr, row, col, bs0, bs1, bs2, bs3, L1, L2), mask=keep, other=0.0)
    g = tl.minimum(tl.maximum(g.to(tl.float32), g_lo), g_hi)
    b = tl.minimum(tl.maximum(b.to(tl.float32), b_lo), b_hi)
    out = g * h.to(tl.float32) + b
    flat = o_ptr + row[:, None] * D + col[None, :]
    tl.store(flat, out.to(o_ptr.dtype.element_ty), mask=keep)


@triton.jit
def _film_bwd_kernel(
    dy_ptr,
    ds0,
    ds1,
    ds2,
    ds3,
    h_ptr,
    hs0,
    hs1,
    hs2,
    hs3,
    g_ptr,
    gs0,
    gs1,
    gs2,
    gs3,
    b_ptr,
    bs0,
    bs1,
    bs2,
    bs3,
    dh_ptr,
    dg_ptr,
    db_ptr,
    ROWS,
    L1,
    L2,
    D,
    g_lo,
    g_hi,
    b_lo,
    b_hi,
    NEED_DH: tl.constexpr,
    NEED_DG: tl.constexpr,
    NEED_DB: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    col = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    keep = (row[:, None] < ROWS) & (col[None, :] < D)
    flat = row[:, None] * D + col[None, :]
    dy = tl.load(_offsets(dy_ptr, row, col, ds0, ds1, ds2, ds3, L1, L2), mask=keep, other=0.0)
    dy = dy.to(tl.float32)
    if NEED_DH or NEED_DG:
        g = tl.load(_offsets(g_ptr, row, col, gs0, gs1, gs2, gs3, L1, L2), mask=keep, other=1.0)
        g = g.to(tl.float32)
        if NEED_DH:
            dh = dy * tl.minimum(tl.maximum(g, g_lo), g_hi)
            tl.store(dh_ptr + flat, dh.to(dh_ptr.dtype.element_ty), mask=keep)
        if NEED_DG:  # torch.clamp's convention: the bounds themselves pass the gradient
            h = tl.load(_offsets(h_ptr, row, col, hs0, hs1, hs2, hs3, L1, L2), mask=keep, other=0.0)
            dg = tl.where((g >= g_lo) & (g <= g_hi), dy * h.to(tl.float32), 0.0)
            tl.store(dg_ptr + flat, dg.to(dg_ptr.dtype.element_ty), mask=keep)
    if NEED_DB:
        b = tl.load(_offsets(b_ptr, row, col, bs0, bs1, bs2, bs3, L1, L2), mask=keep, other=0.0)
        b = b.to(tl.float32)
        db = tl.where((b >= b_lo) & (b <= b_hi), dy, 0.0)
        tl.store(db_ptr + flat, db.to(db_ptr.dtype.element_ty), mask=keep)


def _as_4d(t: torch.Tensor) -> torch.Tensor:
    """(L0, L1, L2, D) view: leading dims padded with 1s, or flattened (may copy) beyond 3."""
    if t.dim() > 4:
        t = t.reshape(-1, *t.shape[-3:])
    while t.dim() < 4:
        t = t.unsqueeze(0)
    return t


def _grid(h4: torch.Tensor) -> tuple[int, int]:
    rows = h4.shape[0] * h4.shape[1] * h4.shape[2]
    return (triton.cdiv(rows, BLOCK_ROWS), triton.cdiv(h4.shape[3], BLOCK_CHANNELS))


def forward(h, gamma, beta, bounds) -> torch.Tensor:
    """clamp(γ)·h + clamp(β); all three the same shape (γ, β may be expanded views)."""
    check_device(h)
    (g_lo, g_hi), (b_lo, b_hi) = bounds
    out = new_buffer(tuple(h.shape), h.dtype, h.device)
    h4, g4, b4 = _as_4d(h), _as_4d(gamma), _as_4d(beta)
    _film_fwd_kernel[_grid(h4)](
        h4,
        *h4.stride(),
        g4,
        *g4.stride(),
        b4,
        *b4.stride(),
        out,
        h4.shape[0] * h4.shape[1] * h4.shape[2],
        h4.shape[1],
        h4.shape[2],
        h4.shape[3],
        float(g_lo),
        float(g_hi),
        float(b_lo),
        float(b_hi),
        BLOCK_M=BLOCK_ROWS,
        BLOCK_D=BLOCK_CHANNELS,
    )
    return out


def backward(dy, h, gamma, beta, bounds, need: tuple[bool, bool, bool]):
    """(dh, dγ, dβ) at h's shape for need = (h, γ, β); entries not needed are None."""
    (g_lo, g_hi), (b_lo, b_hi) = bounds
    need_dh, need_dg, need_db = need
    shape, dev = tuple(h.shape), h.device
    dh = new_buffer(shape, h.dtype, dev) if need_dh else None
    dg = new_buffer(shape, gamma.dtype, dev) if need_dg else None
    db = new_buffer(shape, beta.dtype, dev) if need_db else None
    d4, h4, g4, b4 = _as_4d(dy), _as_4d(h), _as_4d(gamma), _as_4d(beta)
    _film_bwd_kernel[_grid(h4)](
        d4,
        *d4.stride(),
        h4,
        *h4.stride(),
        g4,
        *g4.stride(),
        b4,
        *b4.stride(),
        h if dh is None else dh,
        h if dg is None else dg,
        h if db is None else db,
        h4.shape[0] * h4.shape[1] * h4.shape[2],
        h4.shape[1],
        h4.shape[2],
        h4.shape[3],
        float(g_lo),
        float(g_hi),
        float(b_lo),
        float(b_hi),
        NEED_DH=need_dh,
        NEED_DG=need_dg,
        NEED_DB=need_db,
        BLOCK_M=BLOCK_ROWS,
        BLOCK_D=BLOCK_CHANNELS,
    )
    return dh, dg, db
