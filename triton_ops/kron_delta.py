"""The V3 hot path: y = x·(Σᵢ Aᵢ ⊗ Bᵢ)ᵀ without ever forming the Kronecker product.

Layout (nn.Linear's, row-major, as `torch.kron`): A: (r, a_out, a_in), B: (r, b_out, b_in),
ΔW = Σᵢ kron(Aᵢ, Bᵢ) has shape (a_out·b_out, a_in·b_in) = (out, in), and

    ΔW[p·b_out + q, i·b_in + j] = Σᵣ A[r, p, i] · B[r, q, j].

Reshaping a token x (in,) row-major into X (a_in, b_in) turns the product into two small
GEMMs, y = vec_row(Σᵢ Aᵢ X Bᵢᵀ) — the row-major form of the textbook identity
(A ⊗ B) vec(X) = vec(B X Aᵀ), which is stated for column-major vec. That is what keeps V3
cheap: O(r·(a_out·a_in·b_in + a_out·b_in·b_out)) per token instead of out·in, and no ΔW in
memory. Which factor is contracted first changes the cost, so the cheaper order is taken.

`kron_delta` dispatches (triton_ops.dispatch) to the Triton kernels (`_kron_kernels`: one
kernel per block of tokens, the L·X intermediate kept in registers) or to the reference. The
kernels compute Out[n] = Σᵣ Lᵣ X[n] Rᵣᵀ; "A first" is (L, X, R, Out) = (A, X, B, Y) and
"B first" is the transposed identity Y[n]ᵀ = Σᵣ Bᵣ X[n]ᵀ Aᵣᵀ, i.e. (B, Xᵀ, A, Yᵀ) as strided
views. The backward is the same kernels on other views: dX[n] = Σᵣ Lᵣᵀ dOut[n] Rᵣ,
dLᵣ = Σₙ dOut[n] Rᵣ X[n]ᵀ and dRᵣ = Σₙ dOut[n]ᵀ Lᵣ X[n].
"""

from __future__ import annotations

import torch

from triton_ops._buffers import new_buffer
from triton_ops.dispatch import use_triton


def _as_terms(factor: torch.Tensor, name: str) -> torch.Tensor:
    if factor.dim() == 2:
        return factor.unsqueeze(0)
    if factor.dim() != 3:
        raise ValueError(
            f"{name} must be (r, rows, cols) or (rows, cols), got {tuple(factor.shape)}"
        )
    return factor


def _checked(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
    """(a, b) as (r, rows, cols) terms, after checking that x and the factors agree."""
    a, b = _as_terms(a, "a"), _as_terms(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a has {a.shape[0]} Kronecker terms but b has {b.shape[0]}")
    if x.shape[-1] != a.shape[2] * b.shape[2]:
        raise ValueError(
            f"x has {x.shape[-1]} features; the factors need {a.shape[2]}·{b.shape[2]}"
        )
    return a, b


def _a_first(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> bool:
    """Whether contracting A with X first is the cheaper order (as the reference decides)."""
    (a_out, a_in), (b_out, b_in) = a_shape[-2:], b_shape[-2:]
    return a_out * a_in * b_in + a_out * b_in * b_out <= a_in * b_in * b_out + a_out * a_in * b_out


def kron_flops_per_token(a_shape: tuple[int, int], b_shape: tuple[int, int], terms: int) -> int:
    """Matmul FLOPs of one token through `kron_delta` (the cheaper contraction order)."""
    (a_out, a_in), (b_out, b_in) = a_shape, b_shape
    a_first = a_out * a_in * b_in + a_out * b_in * b_out
    b_first = a_in * b_in * b_out + a_out * a_in * b_out
    return 2 * terms * min(a_first, b_first)


def kron_delta_reference(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x: (..., a_in·b_in), a: (r, a_out, a_in), b: (r, b_out, b_in) -> (..., a_out·b_out).

    2-D factors are taken as one term (r = 1). Gradients flow to x, a and b through autograd.
    """
    a, b = _checked(x, a, b)
    terms, a_out, a_in = a.shape
    _, b_out, b_in = b.shape
    lead = x.shape[:-1]
    xm = x.reshape(-1, a_in, b_in)  # (N, a_in, b_in), row-major
    n = xm.shape[0]
    a_first = a_out * a_in * b_in + a_out * b_in * b_out
    b_first = a_in * b_in * b_out + a_out * a_in * b_out
    if a_first <= b_first:
        # T[n, r, p, j] = Σ_i A[r, p, i] X[n, i, j]; then Y[n, p, q] = Σ_{r, j} T · B[r, q, j]
        t = torch.matmul(a.reshape(terms * a_out, a_in), xm)  # (N, r·a_out, b_in)
        t = t.view(n, terms, a_out, b_in).transpose(1, 2).reshape(n, a_out, terms * b_in)
        y = torch.matmul(t, b.transpose(1, 2).reshape(terms * b_in, b_out))  # (N, a_out, b_out)
    else:
        # Z[n, i, r, q] = Σ_j X[n, i, j] B[r, q, j]; then Y[n, p, q] = Σ_{r, i} A[r, p, i] · Z
        z = torch.matmul(xm, b.permute(2, 0, 1).reshape(b_in, terms * b_out))  # (N, a_in, r·b_out)
        z = z.view(n, a_in, terms, b_out).transpose(1, 2).reshape(n, terms * a_in, b_out)
        y = torch.matmul(a.transpose(0, 1).reshape(a_out, terms * a_in), z)  # (N, a_out, b_out)
    return y.reshape(*lead, a_out * b_out)


def kron_delta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dispatch point the variants call: shapes as `kron_delta_reference`."""
    a3, b3 = _checked(x, a, b)
    if x.numel() == 0 or not use_triton("kron_delta", x, a3, b3):
        return kron_delta_reference(x, a, b)
    lead = x.shape[:-1]
    y = KronDelta.apply(x.reshape(-1, x.shape[-1]), a3, b3)
    return y.reshape(*lead, y.shape[-1])


def _canonical(
    a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, X, R, Out) views of factors, tokens (N, in) and outputs (N, out), cheaper order."""
    n = x.shape[0]
    xm = x.reshape(n, a.shape[2], b.shape[2])
    ym = y.reshape(n, a.shape[1], b.shape[1])  # a view for the kernels' own buffers
    if _a_first(a.shape, b.shape):
        return a, xm, b, ym
    return b, xm.transpose(1, 2), a, ym.transpose(1, 2)


class KronDelta(torch.autograd.Function):
    """Autograd around the Triton kernels; x arrives as (tokens, in), factors as 3-D terms."""

    @staticmethod
    def forward(ctx, x, a, b):
        from triton_ops import _kron_kernels as kernels

        y = new_buffer((x.shape[0], a.shape[1] * b.shape[1]), x.dtype, x.device)
        left, xm, right, ym = _canonical(a, b, x, y)
        kernels.apply(xm, left, right, ym)
        ctx.save_for_backward(x, a, b)
        return y

    @staticmethod
    def backward(ctx, dy):
        from triton_ops import _kron_kernels as kernels

        x, a, b = ctx.saved_tensors
        need_x, need_a, need_b = ctx.needs_input_grad
        a_first = _a_first(a.shape, b.shape)
        left, xm, right, dym = _canonical(a, b, x, dy)
        dx = None
        if need_x:  # dX[n] = Σᵣ Lᵣᵀ dOut[n] Rᵣ
            dx = new_buffer(tuple(x.shape), x.dtype, x.device)
            kernels.apply(
                dym, left.transpose(1, 2), right.transpose(1, 2), _canonical(a, b, dx, dy)[1]
            )
        d_left = d_right = None
        if need_a if a_first else need_b:  # dLᵣ = Σₙ dOut[n] Rᵣ X[n]ᵀ
            d_left = kernels.factor_grad(dym, right, xm, left.dtype)
        if need_b if a_first else need_a:  # dRᵣ = Σₙ dOut[n]ᵀ Lᵣ X[n]
            d_right = kernels.factor_grad(
                dym.transpose(1, 2), left, xm.transpose(1, 2), right.dtype
            )
        return (dx, d_left, d_right) if a_first else (dx, d_right, d_left)
