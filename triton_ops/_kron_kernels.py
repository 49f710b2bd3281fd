"""Triton kernels of kron_delta (imports triton; load only on the kernel path).

Everything is written in one canonical form, per token n and term r:

    apply:        Out[n] = Σᵣ Lᵣ · X[n] · Rᵣᵀ            L (r, P, I), X (N, I, J), R (r, Q, J)
    factor grad:  G[r]   = Σₙ (D[n] · Fᵣ) · X[n]ᵀ         D (N, P, Q), F (r, Q, J), X (N, I, J)

with every operand a strided view, so transposes cost nothing. kron_delta's forward, its dx
and its dA, dB are all one of the two with the right views (see kron_delta.py). The apply
kernel takes a block of tokens at once with batched 3-D `tl.dot`s (tokens are the batch), keeps
the (tokens × P × J) intermediate L·X in registers and never writes it, and accumulates the
output tile in fp32. The factor-grad kernel reduces over tokens split-K (fp32 partials summed by
torch), so few factor tiles still keep many programs busy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from triton_ops._buffers import new_buffer
from triton_ops._tl import block, check_device, mma, upcast

BLOCK_T = 8  # tokens per program: the batch dim of the 3-D dots
MAX_SPLITS = 32


@triton.jit
def _apply_kernel(
    x_ptr,
    sxn,
    sxi,
    sxj,
    l_ptr,
    slr,
    slp,
    sli,
    r_ptr,
    srr,
    srq,
    srj,
    o_ptr,
    son,
    sop,
    soq,
    N,
    TERMS,
    SZ_P,
    SZ_I,
    SZ_J,
    SZ_Q,
    UPCAST: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_I: tl.constexpr,
    BLOCK_J: tl.constexpr,
    BLOCK_Q: tl.constexpr,
):
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    q = tl.program_id(2) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    t3 = t[:, None, None]
    acc = tl.zeros((BLOCK_T, BLOCK_P, BLOCK_Q), dtype=tl.float32)
    for r in range(TERMS):
        for j0 in range(0, SZ_J, BLOCK_J):
            j = j0 + tl.arange(0, BLOCK_J)
            lx = tl.zeros((BLOCK_T, BLOCK_P, BLOCK_J), dtype=tl.float32)
            for i0 in range(0, SZ_I, BLOCK_I):
                i = i0 + tl.arange(0, BLOCK_I)
                lt = tl.load(
                    l_ptr + r * slr + p[:, None] * slp + i[None, :] * sli,
                    mask=(p[:, None] < SZ_P) & (i[None, :] < SZ_I),
                    other=0.0,
                )
                xt = tl.load(
                    x_ptr + t3 * sxn + i[None, :, None] * sxi + j[None, None, :] * sxj,
                    mask=(t3 < N) & (i[None, :, None] < SZ_I) & (j[None, None, :] < SZ_J),
                    other=0.0,
                )
                lb = tl.broadcast_to(lt[None, :, :], (BLOCK_T, BLOCK_P, BLOCK_I))
                lx = mma(lb, xt, lx, UPCAST)
            rt = tl.load(
                r_ptr + r * srr + j[:, None] * srj + q[None, :] * srq,  # Rᵣᵀ tile
                mask=(j[:, None] < SZ_J) & (q[None, :] < SZ_Q),
                other=0.0,
            )
            rb = tl.broadcast_to(rt[None, :, :], (BLOCK_T, BLOCK_J, BLOCK_Q))
            acc = mma(lx.to(x_ptr.dtype.element_ty), rb, acc, UPCAST)
    tl.store(
        o_ptr + t3 * son + p[None, :, None] * sop + q[None, None, :] * soq,
        acc.to(o_ptr.dtype.element_ty),
        mask=(t3 < N) & (p[None, :, None] < SZ_P) & (q[None, None, :] < SZ_Q),
    )


@triton.jit
def _factor_grad_kernel(
    d_ptr,
    sdn,
    sdp,
    sdq,
    f_ptr,
    sfr,
    sfq,
    sfj,
    x_ptr,
    sxn,
    sxi,
    sxj,
    part_ptr,
    N,
    TERMS,
    SZ_P,
    SZ_Q,
    SZ_J,
    SZ_I,
    tokens_per_split,
    UPCAST: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_J: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    r = tl.program_id(0)
    split = tl.program_id(1)
    tiles_i = tl.cdiv(SZ_I, BLOCK_I)
    p = (tl.program_id(2) // tiles_i) * BLOCK_P + tl.arange(0, BLOCK_P)
    i = (tl.program_id(2) % tiles_i) * BLOCK_I + tl.arange(0, BLOCK_I)
    start = split * tokens_per_split
    end = tl.minimum(start + tokens_per_split, N)
    acc = tl.zeros((BLOCK_P, BLOCK_I), dtype=tl.float32)
    for t0 in range(start, end, BLOCK_T):
        t3 = (t0 + tl.arange(0, BLOCK_T))[:, None, None]
        for j0 in range(0, SZ_J, BLOCK_J):
            j = j0 + tl.arange(0, BLOCK_J)
            df = tl.zeros((BLOCK_T, BLOCK_P, BLOCK_J), dtype=tl.float32)
            for q0 in range(0, SZ_Q, BLOCK_Q):
                q = q0 + tl.arange(0, BLOCK_Q)
                keep = (t3 < end) & (p[None, :, None] < SZ_P) & (q[None, None, :] < SZ_Q)
                dt = tl.load(
                    d_ptr + t3 * sdn + p[None, :, None] * sdp + q[None, None, :] * sdq,
                    mask=keep,
                    other=0.0,
                )
                ft = tl.load(
                    f_ptr + r * sfr + q[:, None] * sfq + j[None, :] * sfj,
                    mask=(q[:, None] < SZ_Q) & (j[None, :] < SZ_J),
                    other=0.0,
                )
                fb = tl.broadcast_to(ft[None, :, :], (BLOCK_T, BLOCK_Q, BLOCK_J))
                df = mma(dt, fb, df, UPCAST)
            xt = tl.load(
                x_ptr + t3 * sxn + j[None, :, None] * sxj + i[None, None, :] * sxi,
                mask=(t3 < end) & (j[None, :, None] < SZ_J) & (i[None, None, :] < SZ_I),
                other=0.0,
            )  # X[n]ᵀ tile (BLOCK_T, BLOCK_J, BLOCK_I)
            zero = tl.zeros((BLOCK_T, BLOCK_P, BLOCK_I), dtype=tl.float32)
            acc += tl.sum(mma(df.to(x_ptr.dtype.element_ty), xt, zero, UPCAST), axis=0)
    tl.store(
        part_ptr + (split * TERMS + r) * SZ_P * SZ_I + p[:, None] * SZ_I + i[None, :],
        acc,
        mask=(p[:, None] < SZ_P) & (i[None, :] < SZ_I),
    )


def _tile(size: int) -> int:
    return block(size, hi=32)


def apply(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor, out: torch.Tensor) -> None:
    """out[n] = Σᵣ left[r]·x[n]·right[r]ᵀ into the (N, P, Q) view `out` (every element)."""
    check_device(x)
    n, i_dim, j_dim = x.shape
    terms, p_dim, _ = left.shape
    q_dim = right.shape[1]
    bp, bq = _tile(p_dim), _tile(q_dim)
    grid = (triton.cdiv(n, BLOCK_T), triton.cdiv(p_dim, bp), triton.cdiv(q_dim, bq))
    _apply_kernel[grid](
        x,
        *x.stride(),
        left,
        *left.stride(),
        right,
        *right.stride(),
        out,
        *out.stride(),
        n,
        terms,
        p_dim,
        i_dim,
        j_dim,
        q_dim,
        UPCAST=upcast(x.dtype),
        BLOCK_T=BLOCK_T,
        BLOCK_P=bp,
        BLOCK_I=_tile(i_dim),
        BLOCK_J=_tile(j_dim),
        BLOCK_Q=bq,
    )


def factor_grad(d: torch.Tensor, f: torch.Tensor, x: torch.Tensor, dtype: torch.dtype):
    """G[r] = Σₙ (d[n]·f[r])·x[n]ᵀ: d (N, P, Q), f (r, Q, J), x (N, I, J) -> (r, P, I)."""
    n, p_dim, q_dim = d.shape
    terms, _, j_dim = f.shape
    i_dim = x.shape[1]
    bp, bi = _tile(p_dim), _tile(i_dim)
    blocks = triton.cdiv(max(n, 1), BLOCK_T)
    splits = min(MAX_SPLITS, blocks)
    tokens_per_split = triton.cdiv(blocks, splits) * BLOCK_T
    part = new_buffer((splits, terms, p_dim, i_dim), torch.float32, d.device)
    grid = (terms, splits, triton.cdiv(p_dim, bp) * triton.cdiv(i_dim, bi))
    _factor_grad_kernel[grid](
        d,
        *d.stride(),
        f,
        *f.stride(),
        x,
        *x.stride(),
        part,
        n,
        terms,
        p_dim,
        q_dim,
        j_dim,
        i_dim,
        tokens_per_split,
        UPCAST=upcast(x.dtype),
        BLOCK_T=BLOCK_T,
        BLOCK_P=bp,
        BLOCK_Q=_tile(q_dim),
        BLOCK_J=_tile(j_dim),
        BLOCK_I=bi,
    )
    return part.sum(0).to(dtype)
