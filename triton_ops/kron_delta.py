"""The V3 hot path: y = x·(Σᵢ Aᵢ ⊗ Bᵢ)ᵀ without ever forming the Kronecker product.

Layout (nn.Linear's, row-major, as `torch.kron`): A: (r, a_out, a_in), B: (r, b_out, b_in),
ΔW = Σᵢ kron(Aᵢ, Bᵢ) has shape (a_out·b_out, a_in·b_in) = (out, in), and

    ΔW[p·b_out + q, i·b_in + j] = Σᵣ A[r, p, i] · B[r, q, j].

Reshaping a token x (in,) row-major into X (a_in, b_in) turns the product into two small
GEMMs, y = vec_row(Σᵢ Aᵢ X Bᵢᵀ) — the row-major form of the textbook identity
(A ⊗ B) vec(X) = vec(B X Aᵀ), which is stated for column-major vec. That is what keeps V3
cheap: O(r·(a_out·a_in·b_in + a_out·b_in·b_out)) per token instead of out·in, and no ΔW in
memory. Which factor is contracted first changes the cost, so the cheaper order is taken.
"""

from __future__ import annotations

import torch


def _as_terms(factor: torch.Tensor, name: str) -> torch.Tensor:
    if factor.dim() == 2:
        return factor.unsqueeze(0)
    if factor.dim() != 3:
        raise ValueError(
            f"{name} must be (r, rows, cols) or (rows, cols), got {tuple(factor.shape)}"
        )
    return factor


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
    a, b = _as_terms(a, "a"), _as_terms(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a has {a.shape[0]} Kronecker terms but b has {b.shape[0]}")
    terms, a_out, a_in = a.shape
    _, b_out, b_in = b.shape
    if x.shape[-1] != a_in * b_in:
        raise ValueError(f"x has {x.shape[-1]} features; the factors need {a_in}·{b_in}")
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
    """Dispatch point the variants call; only the torch reference exists so far."""
    return kron_delta_reference(x, a, b)
