"""Triton kernels of masked_lora (imports triton; load only on the kernel path).

Forward: the base GEMM x·W is left to torch (cuBLAS is as good as it gets for a dense GEMM);
one kernel then does the whole adapter per block of tokens: shrink s = x·V accumulated in
fp32, mask and scaling multiplied in registers (the masked intermediate never reaches memory),
expand s·Uᵀ tile by tile over the outputs, adding base and bias in the same epilogue, so y is
written once. The eager path writes and re-reads x·V, its masked copy, s·Uᵀ, its scaled copy
and the sum: four extra (tokens × out) passes.

Backward: one kernel per block of tokens recomputes s = x·V and forms dy·U, both (tokens × r),
and from them g = scaling·(dy·U)⊙m (for dV and dx), h = scaling·s⊙m (for dU) and, only if the
mask needs a gradient, dm = scaling·s⊙(dy·U); it then writes dx = dy·Wᵀ (torch) + g·Vᵀ. The
token reductions dV = xᵀ·g and dU = dyᵀ·h run in a split-K kernel (fp32 partials summed by
torch) so that few output tiles still keep many programs busy.

All tensors are passed with their strides, so transposed or sliced 2-D views work as they are.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from triton_ops._buffers import new_buffer
from triton_ops._tl import check_device, mma, upcast

BLOCK_TOKENS = 32
BLOCK_FEATURES = 32
MAX_SPLITS = 32


@triton.jit
def _shrink(
    x_ptr,
    sxn,
    sxk,
    v_ptr,
    svk,
    svr,
    rm,
    rr,
    N,
    K,
    R,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_R: tl.constexpr,
    UPCAST: tl.constexpr,
):
    """(BLOCK_M, BLOCK_R) fp32 tile of x·V for rows rm."""
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        xt = tl.load(
            x_ptr + rm[:, None] * sxn + rk[None, :] * sxk,
            mask=(rm[:, None] < N) & (rk[None, :] < K),
            other=0.0,
        )
        vt = tl.load(
            v_ptr + rk[:, None] * svk + rr[None, :] * svr,
            mask=(rk[:, None] < K) & (rr[None, :] < R),
            other=0.0,
        )
        acc = mma(xt, vt, acc, UPCAST)
    return acc


@triton.jit
def _lora_fwd_kernel(
    x_ptr,
    sxn,
    sxk,
    v_ptr,
    svk,
    svr,
    u_ptr,
    suo,
    sur,
    m_ptr,
    smn,
    smr,
    base_ptr,
    sbn,
    sbo,
    bias_ptr,
    sbias,
    out_ptr,
    son,
    soo,
    N,
    K,
    OUT,
    R,
    scaling,
    HAS_MASK: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_R: tl.constexpr,
):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rr = tl.arange(0, BLOCK_R)
    s = _shrink(
        x_ptr, sxn, sxk, v_ptr, svk, svr, rm, rr, N, K, R, BLOCK_M, BLOCK_K, BLOCK_R, UPCAST
    )
    if HAS_MASK:  # the epilogue of the shrink: s never goes to memory
        m = tl.load(
            m_ptr + rm[:, None] * smn + rr[None, :] * smr,
            mask=(rm[:, None] < N) & (rr[None, :] < R),
            other=0.0,
        )
        s = s * m.to(tl.float32)
    s = (s * scaling).to(x_ptr.dtype.element_ty)  # eager rounds x·V to the input dtype too
    for o0 in range(0, OUT, BLOCK_O):
        ro = o0 + tl.arange(0, BLOCK_O)
        ut = tl.load(
            u_ptr + rr[:, None] * sur + ro[None, :] * suo,  # Uᵀ tile (BLOCK_R, BLOCK_O)
            mask=(rr[:, None] < R) & (ro[None, :] < OUT),
            other=0.0,
        )
        keep = (rm[:, None] < N) & (ro[None, :] < OUT)
        acc = tl.load(base_ptr + rm[:, None] * sbn + ro[None, :] * sbo, mask=keep, other=0.0)
        acc = acc.to(tl.float32)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + ro * sbias, mask=ro < OUT, other=0.0).to(tl.float32)[None, :]
        acc = mma(s, ut, acc, UPCAST)
        tl.store(
            out_ptr + rm[:, None] * son + ro[None, :] * soo,
            acc.to(out_ptr.dtype.element_ty),
            mask=keep,
        )


@triton.jit
def _lora_bwd_rows_kernel(
    x_ptr,
    sxn,
    sxk,
    dy_ptr,
    sdn,
    sdo,
    v_ptr,
    svk,
    svr,
    u_ptr,
    suo,
    sur,
    m_ptr,
    smn,
    smr,
    dxb_ptr,
    sbn,
    sbk,
    dx_ptr,
    sxon,
    sxok,
    g_ptr,
    h_ptr,
    dm_ptr,
    N,
    K,
    OUT,
    R,
    scaling,
    HAS_MASK: tl.constexpr,
    NEED_DX: tl.constexpr,
    NEED_H: tl.constexpr,
    NEED_DM: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_R: tl.constexpr,
):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rr = tl.arange(0, BLOCK_R)
    nr = (rm[:, None] < N) & (rr[None, :] < R)
    dyu = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for o0 in range(0, OUT, BLOCK_O):
        ro = o0 + tl.arange(0, BLOCK_O)
        dyt = tl.load(
            dy_ptr + rm[:, None] * sdn + ro[None, :] * sdo,
            mask=(rm[:, None] < N) & (ro[None, :] < OUT),
            other=0.0,
        )
        ut = tl.load(
            u_ptr + ro[:, None] * suo + rr[None, :] * sur,
            mask=(ro[:, None] < OUT) & (rr[None, :] < R),
            other=0.0,
        )
        dyu = mma(dyt, ut, dyu, UPCAST)
    m = tl.full((BLOCK_M, BLOCK_R), 1.0, tl.float32)
    if HAS_MASK:
        m = tl.load(m_ptr + rm[:, None] * smn + rr[None, :] * smr, mask=nr, other=0.0)
        m = m.to(tl.float32)
    g = (dyu * m * scaling).to(x_ptr.dtype.element_ty)
    tl.store(g_ptr + rm[:, None] * R + rr[None, :], g, mask=nr)
    if NEED_H or NEED_DM:
        s = _shrink(
            x_ptr, sxn, sxk, v_ptr, svk, svr, rm, rr, N, K, R, BLOCK_M, BLOCK_K, BLOCK_R, UPCAST
        )
        if NEED_H:
            h = (s * m * scaling).to(x_ptr.dtype.element_ty)
            tl.store(h_ptr + rm[:, None] * R + rr[None, :], h, mask=nr)
        if NEED_DM:
            dm = (s * dyu * scaling).to(dm_ptr.dtype.element_ty)
            tl.store(dm_ptr + rm[:, None] * R + rr[None, :], dm, mask=nr)
    if NEED_DX:
        for k0 in range(0, K, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            keep = (rm[:, None] < N) & (rk[None, :] < K)
            vt = tl.load(
                v_ptr + rr[:, None] * svr + rk[None, :] * svk,  # Vᵀ tile
                mask=(rr[:, None] < R) & (rk[None, :] < K),
                other=0.0,
            )
            acc = tl.load(dxb_ptr + rm[:, None] * sbn + rk[None, :] * sbk, mask=keep, other=0.0)
            acc = mma(g, vt, acc.to(tl.float32), UPCAST)
            tl.store(
                dx_ptr + rm[:, None] * sxon + rk[None, :] * sxok,
                acc.to(dx_ptr.dtype.element_ty),
                mask=keep,
            )


@triton.jit
def _tokens_tn_kernel(
    a_ptr,
    san,
    sap,
    g_ptr,
    sgn,
    sgr,
    part_ptr,
    N,
    P,
    R,
    tokens_per_split,
    UPCAST: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_R: tl.constexpr,
):
    """part[split, p, r] = Σ_{n in split} a[n, p]·g[n, r] (fp32)."""
    rp = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    split = tl.program_id(1)
    rr = tl.arange(0, BLOCK_R)
    acc = tl.zeros((BLOCK_P, BLOCK_R), dtype=tl.float32)
    start = split * tokens_per_split
    end = tl.minimum(start + tokens_per_split, N)
    for n0 in range(start, end, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        at = tl.load(
            a_ptr + rp[:, None] * sap + rn[None, :] * san,  # aᵀ tile (BLOCK_P, BLOCK_N)
            mask=(rp[:, None] < P) & (rn[None, :] < end),
            other=0.0,
        )
        gt = tl.load(
            g_ptr + rn[:, None] * sgn + rr[None, :] * sgr,
            mask=(rn[:, None] < end) & (rr[None, :] < R),
            other=0.0,
        )
        acc = mma(at, gt, acc, UPCAST)
    tl.store(
        part_ptr + split * P * R + rp[:, None] * R + rr[None, :],
        acc,
        mask=(rp[:, None] < P) & (rr[None, :] < R),
    )


def _r_block(r: int) -> int:
    return max(16, triton.next_power_of_2(r))  # the whole rank sits in one tile


def forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    v: torch.Tensor,
    u: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float,
) -> torch.Tensor:
    """x: (N, in), weight: (in, out), v: (in, r), u: (out, r), mask: (N, r) or None."""
    check_device(x)
    n, k = x.shape
    o, r = u.shape
    base = x @ weight
    out = new_buffer((n, o), x.dtype, x.device)
    m = mask if mask is not None else v  # placeholder pointer, never read
    b = bias if bias is not None else v
    grid = (triton.cdiv(n, BLOCK_TOKENS),)
    _lora_fwd_kernel[grid](
        x,
        *x.stride(),
        v,
        *v.stride(),
        u,
        *u.stride(),
        m,
        m.stride(0),
        m.stride(-1),
        base,
        *base.stride(),
        b,
        b.stride(0),
        out,
        *out.stride(),
        n,
        k,
        o,
        r,
        float(scaling),
        HAS_MASK=mask is not None,
        HAS_BIAS=bias is not None,
        UPCAST=upcast(x.dtype),
        BLOCK_M=BLOCK_TOKENS,
        BLOCK_K=BLOCK_FEATURES,
        BLOCK_O=BLOCK_FEATURES,
        BLOCK_R=_r_block(r),
    )
    return out


def token_reduce(a: torch.Tensor, g: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """aᵀ·g over the token axis: a (N, P), g (N, R) -> (P, R) in `dtype`, split-K."""
    n, p = a.shape
    r = g.shape[1]
    blocks = triton.cdiv(max(n, 1), BLOCK_TOKENS)
    splits = min(MAX_SPLITS, blocks)
    tokens_per_split = triton.cdiv(blocks, splits) * BLOCK_TOKENS
    part = new_buffer((splits, p, r), torch.float32, a.device)
    _tokens_tn_kernel[(triton.cdiv(p, BLOCK_FEATURES), splits)](
        a,
        *a.stride(),
        g,
        *g.stride(),
        part,
        n,
        p,
        r,
        tokens_per_split,
        UPCAST=upcast(a.dtype),
        BLOCK_N=BLOCK_TOKENS,
        BLOCK_P=BLOCK_FEATURES,
        BLOCK_R=_r_block(r),
    )
    return part.sum(0).to(dtype)


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    v: torch.Tensor,
    u: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float,
    need: tuple[bool, bool, bool, bool],
) -> tuple[torch.Tensor | None, ...]:
    """(dx, dV, dU, dmask) for need = (x, V, U, mask); entries not needed are None."""
    need_dx, need_dv, need_du, need_dm = need
    n, k = x.shape
    o, r = u.shape
    dev = x.device
    g = new_buffer((n, r), x.dtype, dev)
    h = new_buffer((n, r), x.dtype, dev) if need_du else g
    dm = new_buffer((n, r), mask.dtype, dev) if need_dm and mask is not None else g
    dx_base = dy @ weight.t() if need_dx else x
    dx = new_buffer((n, k), x.dtype, dev) if need_dx else x
    m = mask if mask is not None else g
    _lora_bwd_rows_kernel[(triton.cdiv(n, BLOCK_TOKENS),)](
        x,
        *x.stride(),
        dy,
        *dy.stride(),
        v,
        *v.stride(),
        u,
        *u.stride(),
        m,
        m.stride(0),
        m.stride(-1),
        dx_base,
        *dx_base.stride(),
        dx,
        *dx.stride(),
        g,
        h,
        dm,
        n,
        k,
        o,
        r,
        float(scaling),
        HAS_MASK=mask is not None,
        NEED_DX=need_dx,
        NEED_H=need_du,
        NEED_DM=need_dm and mask is not None,
        UPCAST=upcast(x.dtype),
        BLOCK_M=BLOCK_TOKENS,
        BLOCK_K=BLOCK_FEATURES,
        BLOCK_O=BLOCK_FEATURES,
        BLOCK_R=_r_block(r),
    )
    dv = token_reduce(x, g, v.dtype) if need_dv else None
    du = token_reduce(dy, h, u.dtype) if need_du else None
    return (
        dx if need_dx else None,
        dv,
        du,
        dm if need_dm and mask is not None else None,
    )
