"""Composing expert low-rank deltas and projecting them into a Frobenius trust region.

Conventions: expert k adapts a layer with factors V_k (in, r) and U_k (out, r), delta
ΔW_k = U_k V_kᵀ (out, in). (`engine.variants.base.LoraLayer` stores the same factors as
`lora_v` / `lora_u`; its (in, out) layout is the transpose, with the same norm.)

Why everything stays factored: a composition Σ_i w_i U_i V_iᵀ is itself one low-rank product
U Vᵀ with U = [w_1 U_1 | w_2 U_2 | ...] and V = [V_1 | V_2 | ...] (R = Σ r_i columns), so
it can be applied as x V Uᵀ without forming ΔW, and its norm follows from two R x R Gram
matrices:

    ‖U Vᵀ‖_F² = tr(V Uᵀ U Vᵀ) = tr((UᵀU)(VᵀV)) = Σ_ij (UᵀU)_ij (VᵀV)_ij

costing O((in + out) R²) instead of O(in · out · R). The projection onto ‖ΔW‖_F <= tau
scales U uniformly, which keeps the direction of ΔW (and its row/column spaces) exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.router.actions import active_rank


def _check_pair(u: torch.Tensor, v: torch.Tensor) -> None:
    if u.ndim < 2 or v.ndim < 2 or u.shape[-1] != v.shape[-1] or u.shape[:-2] != v.shape[:-2]:
        raise ValueError(
            f"factors must be U (..., out, r) and V (..., in, r) with the same r "
            f"(got {tuple(u.shape)} and {tuple(v.shape)})"
        )


def action_factors(
    u: torch.Tensor, v: torch.Tensor, rank_budget: float, bias_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One expert's factors under an action: the first ceil(budget·r) components, scaled.

    The leading components are kept (not the largest): experts are trained with that prefix
    order in mind (as the dynamic-rank variant's masks), and a prefix keeps shapes static per
    budget. The bias scale multiplies U only, so ΔW is scaled exactly once.
    """
    _check_pair(u, v)
    if not math.isfinite(bias_scale):
        raise ValueError(f"bias_scale must be finite (got {bias_scale})")
    keep = active_rank(u.shape[-1], rank_budget)
    return u[..., :keep] * bias_scale, v[..., :keep]


def compose(
    factors: Sequence[tuple[torch.Tensor, torch.Tensor]], weights: Sequence[float] | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weighted sum of deltas Σ w_i U_i V_iᵀ, kept as factor lists (us, vs).

    Weights are folded into the U factors; `weights=None` means 1 for every expert.
    """
    if not factors:
        raise ValueError("compose needs at least one expert's factors")
    weights = [1.0] * len(factors) if weights is None else list(weights)
    if len(weights) != len(factors):
        raise ValueError(f"{len(factors)} experts but {len(weights)} weights")
    us, vs = [], []
    for (u, v), w in zip(factors, weights, strict=True):
        _check_pair(u, v)
        us.append(u * w)
        vs.append(v)
    return us, vs


def _concat(
    us: Sequence[torch.Tensor], vs: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    if len(us) != len(vs) or not us:
        raise ValueError(f"need matching, non-empty factor lists (got {len(us)} and {len(vs)})")
    for u, v in zip(us, vs, strict=True):
        _check_pair(u, v)
    return torch.cat(list(us), dim=-1), torch.cat(list(vs), dim=-1)


def frobenius_norm(us: Sequence[torch.Tensor], vs: Sequence[torch.Tensor]) -> torch.Tensor:
    """‖Σ_i U_i V_iᵀ‖_F from the factors only (leading batch dims allowed: one norm each).

    Sum of the Hadamard product of the concatenated factors' Gram matrices; clamped at 0
    before the square root because cancelling terms can round to a tiny negative.
    """
    u, v = _concat(us, vs)
    squared = ((u.mT @ u) * (v.mT @ v)).sum(dim=(-2, -1))
    return squared.clamp_min(0.0).sqrt()


def delta_weight(us: Sequence[torch.Tensor], vs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Materialised ΔW = Σ U_i V_iᵀ (out, in): for tests and inspection of small layers only."""
    u, v = _concat(us, vs)
    return u @ v.mT


@dataclass
class ProjectionStats:
    """Running counts for the report: how often the trust region had to shrink a composition."""

    count: int = 0  # projections made (norm was above tau)
    total: int = 0  # compositions checked
    max_norm: float = 0.0  # largest pre-projection norm seen

    @property
    def rate(self) -> float:
        """Fraction of checked compositions that were projected."""
        return self.count / self.total if self.total else 0.0

    def record(self, norm: float, projected: bool) -> None:
        self.total += 1
        self.count += int(projected)
        self.max_norm = max(self.max_norm, norm)

    def as_dict(self) -> dict[str, float]:
        return {
            "projections": self.count,
            "checked": self.total,
            "projection_rate": self.rate,
            "max_norm": self.max_norm,
        }


def project(
    us: Sequence[torch.Tensor],
    vs: Sequence[torch.Tensor],
    tau: float,
    stats: ProjectionStats | None = None,
) -> tuple[torch.Tensor, tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Scale a composition so that ‖ΔW‖_F <= tau; returns (scale, (us, vs)).

    scale = min(1, tau / ‖ΔW‖_F), applied to every U (so ΔW keeps its direction); inside
    the region the factors are returned as given and scale is exactly 1. The scale stays in
    the graph, so gradients flow through the projection when experts are trained with it.
    One composition per call (no batch dims): `stats` records one check per call.
    """
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be finite and > 0 (got {tau})")
    norm = frobenius_norm(us, vs)
    if norm.ndim != 0:
        raise ValueError("project takes one composition (no batch dims); loop over the batch")
    norm_value = float(norm.detach())
    if not math.isfinite(norm_value):
        raise ValueError(f"composition norm is not finite ({norm_value})")
    inside = norm_value <= tau
    if stats is not None:
        stats.record(norm_value, projected=not inside)
    if inside:
        return torch.ones((), dtype=norm.dtype, device=norm.device), (list(us), list(vs))
    scale = tau / norm
    return scale, ([u * scale for u in us], list(vs))
