"""The V4 hot path: h ← clamp(γ)·h + clamp(β) on the residual stream, one fused op.

The clamp lives inside the op rather than in the controller so that no caller can apply an
unclamped modulation by accident: the bounds are part of the kernel's contract, and the
fused kernel reads γ, β once, clamps in registers and writes h once.

`film` dispatches (triton_ops.dispatch) to the Triton kernels (`_film_kernels`) or to the
reference. On the kernel path γ and β are expanded (as views, no copy) to h's shape; the
kernel's dγ, dβ come back at that shape and autograd's expand reduces them over the broadcast
dims, exactly as for the reference.
"""

from __future__ import annotations

import torch

from triton_ops.dispatch import use_triton

Bounds = tuple[tuple[float, float], tuple[float, float]]  # ((γ_lo, γ_hi), (β_lo, β_hi))


def film_reference(
    h: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, lo_hi: Bounds
) -> torch.Tensor:
    """h: (..., d); gamma, beta broadcast to h (e.g. (B, T, d) or (B, 1, d)); raw, unclamped.

    Gradients reach γ and β only where they are inside their range (a hard clamp, as in the
    design); the identity γ = 1, β = 0 must lie inside the bounds so it is reachable.
    """
    (g_lo, g_hi), (b_lo, b_hi) = lo_hi
    return gamma.clamp(g_lo, g_hi) * h + beta.clamp(b_lo, b_hi)


def film(h: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, lo_hi: Bounds) -> torch.Tensor:
    """Dispatch point the variants call: shapes and gradients as `film_reference`."""
    if h.numel() == 0 or not use_triton("film", h, gamma, beta):
        return film_reference(h, gamma, beta, lo_hi)
    return Film.apply(h, gamma.expand(h.shape), beta.expand(h.shape), lo_hi)


class Film(torch.autograd.Function):
    """Autograd around the fused kernels; γ, β arrive as (maybe 0-stride) views of h's shape."""

    @staticmethod
    def forward(ctx, h, gamma, beta, lo_hi):
        from triton_ops import _film_kernels as kernels

        ctx.lo_hi = lo_hi
        ctx.save_for_backward(h, gamma, beta)
        return kernels.forward(h, gamma, beta, lo_hi)

    @staticmethod
    def backward(ctx, dy):
        from triton_ops import _film_kernels as kernels

        h, gamma, beta = ctx.saved_tensors
        dh, dg, db = kernels.backward(dy, h, gamma, beta, ctx.lo_hi, ctx.needs_input_grad[:3])
        return dh, dg, db, None
