"""The V4 hot path: h ← clamp(γ)·h + clamp(β) on the residual stream, one fused op.

The clamp lives inside the op rather than in the controller so that no caller can apply an
unclamped modulation by accident: the bounds are part of the kernel's contract, and the
fused kernel will read γ, β once, clamp in registers and write h once.
"""

from __future__ import annotations

import torch

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
    """Dispatch point the variants call; only the torch reference exists so far."""
    return film_reference(h, gamma, beta, lo_hi)
