"""V3: the MLP down projection gets ΔW = Σᵢ Aᵢ ⊗ Bᵢ on top of the shared static LoRA.

Why Kronecker: a sum of r Kronecker products has rank up to r·rank(A)·rank(B), so a few
hundred parameters give a full-rank, structured update where a LoRA of the same size is rank 1
or 2. The factor shapes come from LoKr's rule (each dimension split into the two divisors
nearest its square root), which works for any layer shape: a prime dimension simply does not
split (factor 1), and non-square layers get non-square factors.

Why the spectral clamp: ‖A ⊗ B‖₂ = ‖A‖₂·‖B‖₂, so clamping each term's product of factor
norms bounds how far the update can move the layer (‖ΔW‖₂ ≤ r·spectral_budget). It runs
after the optimiser step (`after_optimizer_step`), not in the forward pass, so a forward never
mutates parameters and evaluation is side-effect free.

The product is never materialised in the forward pass (`triton_ops.kron_delta`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.variants.base import AdapterModel, LoraLayer
from engine.variants.kron.config import KroneckerConfig
from store.errors import BemctlError
from triton_ops.kron_delta import kron_delta


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """(m, n) with m·n = dimension and m ≤ n, m the divisor nearest √dimension (LoKr's rule).

    With `factor` > 0 that divides `dimension`, (factor, dimension // factor) is returned as is
    (LoKr's `decompose_factor`); otherwise m grows through the divisors of `dimension` while
    m + n shrinks, which stops at the divisor pair closest to the square root. Primes give
    (1, p).
    """
    if dimension < 1:
        raise ValueError(f"dimension must be >= 1 (got {dimension})")
    if factor > 0 and dimension % factor == 0:
        m, n = factor, dimension // factor
        return (m, n) if m <= n else (n, m)
    limit = dimension if factor <= 0 else factor
    m, n = 1, dimension
    while m < n:
        candidate = m + 1
        while dimension % candidate:
            candidate += 1
        other = dimension // candidate
        if candidate + other > m + n or candidate > limit:
            break
        m, n = candidate, other
    return (m, n) if m <= n else (n, m)


def kron_factor_shapes(
    in_features: int, out_features: int, factor: int = -1
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((a_out, a_in), (b_out, b_in)) so that kron(A, B) is (out_features, in_features).

    As in peft's LoKr, A takes the smaller divisor of each dimension and B the larger, so A is
    the small "scale" factor and B carries most of the structure.
    """
    in_small, in_large = factorization(in_features, factor)
    out_small, out_large = factorization(out_features, factor)
    return (out_small, in_small), (out_large, in_large)


def _layer_features(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, LoraLayer):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D":  # GPT-2 stores W as (in, out)
        in_features, out_features = module.weight.shape
        return in_features, out_features
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    raise BemctlError(f"kronecker_down cannot adapt {type(module).__name__}: Linear/Conv1D only")


class KroneckerLayer(nn.Module):
    """A (possibly LoRA-adapted) projection plus x·(Σᵢ Aᵢ ⊗ Bᵢ)ᵀ."""

    def __init__(self, base_layer: nn.Module, rank: int) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.in_features, self.out_features = _layer_features(base_layer)
        (a_out, a_in), (b_out, b_in) = kron_factor_shapes(self.in_features, self.out_features)
        dtype = next(base_layer.parameters()).dtype
        # As LoKr: A = 0 so ΔW = 0 at init (the variant starts as the baseline), B random so
        # A's gradient is non-zero from the first step.
        self.kron_a = nn.Parameter(torch.zeros(rank, a_out, a_in, dtype=dtype))
        self.kron_b = nn.Parameter(torch.empty(rank, b_out, b_in, dtype=dtype))
        for term in self.kron_b:
            nn.init.kaiming_uniform_(term, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + kron_delta(x, self.kron_a, self.kron_b)

    def delta_weight(self) -> torch.Tensor:
        """The Kronecker ΔW in (in, out) layout like `LoraLayer.delta_weight` (inspection only)."""
        full = sum(torch.kron(a, b) for a, b in zip(self.kron_a, self.kron_b, strict=True))
        return full.t()

    @torch.no_grad()
    def clamp_spectral_(self, budget: float) -> torch.Tensor:
        """Rescale Aᵢ and Bᵢ by √(budget / ‖Aᵢ‖₂‖Bᵢ‖₂) where that product exceeds the budget.

        Both factors get the same factor so neither collapses; terms within budget are not
        touched at all. Returns the per-term products before clamping (for logging).
        """
        norm_a = torch.linalg.matrix_norm(self.kron_a.double(), ord=2)
        norm_b = torch.linalg.matrix_norm(self.kron_b.double(), ord=2)
        product = norm_a * norm_b
        over = product > budget
        if over.any():
            scale = (budget / product[over]).sqrt()[:, None, None]
            self.kron_a[over] = (self.kron_a[over].double() * scale).to(self.kron_a.dtype)
            self.kron_b[over] = (self.kron_b[over].double() * scale).to(self.kron_b.dtype)
        return product


def _matches(name: str, suffixes: list[str]) -> bool:
    return any(name == s or name.endswith("." + s) for s in suffixes)


class KroneckerModel(AdapterModel):
    config: KroneckerConfig

    def __init__(self, base_model: nn.Module, config: KroneckerConfig) -> None:
        super().__init__(base_model, config)
        self.kron_layers: dict[str, KroneckerLayer] = {}
        for name, module in list(base_model.named_modules()):
            if not _matches(name, config.kron_targets) or isinstance(module, KroneckerLayer):
                continue
            parent_name, _, leaf = name.rpartition(".")
            parent = base_model.get_submodule(parent_name) if parent_name else base_model
            layer = KroneckerLayer(module, config.kron_rank)
            setattr(parent, leaf, layer)
            self.kron_layers[name] = layer
        if not self.kron_layers:
            raise BemctlError(
                f"bem_config.kron_targets {config.kron_targets} matched no module of the model"
            )

    def after_optimizer_step(self) -> None:
        """Clamp every term to the spectral budget; the training loop calls this per step."""
        for layer in self.kron_layers.values():
            layer.clamp_spectral_(self.config.spectral_budget)

    def delta_weights(self) -> dict[str, torch.Tensor]:
        deltas = super().delta_weights()
        for name, layer in self.kron_layers.items():
            kron = layer.delta_weight()
            deltas[name] = deltas[name] + kron if name in deltas else kron
        return deltas
