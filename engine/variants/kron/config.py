"""V3 knobs: how many Kronecker terms, their spectral budget, and which projections get them.

`kron_rank` defaults to 1 because of the ±5% budget gate, not taste: on the embedded GPT-2 one
near-square term on each `mlp.c_proj` (512 -> 128) costs 640 parameters and 16,384 FLOPs per
token per layer, i.e. +3.9% parameters and +3.7% FLOPs over the static LoRA; two terms would
be +7.8% parameters. Replacing the down projection's LoRA instead does not fit either: a
Kronecker sum with as many parameters as that LoRA (5,120) needs 8 terms and ~13x its FLOPs.
"""

from typing import Literal

from pydantic import Field

from engine.variants.config_base import VariantConfig


class KroneckerConfig(VariantConfig):
    variant: Literal["kronecker_down"] = "kronecker_down"
    kron_rank: int = Field(1, ge=1, le=64, description="Kronecker terms r in ΔW = Σ Aᵢ ⊗ Bᵢ")
    spectral_budget: float = Field(
        1.0, gt=0, description="after every optimiser step ‖Aᵢ‖₂·‖Bᵢ‖₂ is clamped to this"
    )
    kron_targets: list[str] = Field(
        default_factory=lambda: ["mlp.c_proj"],
        min_length=1,
        description="module-name suffixes that get the Kronecker delta (GPT-2 MLP down proj)",
    )
