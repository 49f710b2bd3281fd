"""V4 knobs: which blocks' outputs are modulated, the clamp ranges, and the controller's width.

`controller_rank` is the bottleneck of the γ/β controller; its default (4) keeps the variant at
+4.7% trainable parameters over the static LoRA on the embedded GPT-2 with two FiLM layers
(each extra FiLM layer adds 5·2·d = 1,280 parameters there, so three layers exceed ±5%).
"""

from typing import Literal

from pydantic import Field, model_validator

from engine.variants.config_base import VariantConfig


class ResidualFilmConfig(VariantConfig):
    variant: Literal["residual_film"] = "residual_film"
    film_layers: list[int] = Field(
        default_factory=lambda: [1, 2],
        min_length=1,
        description="indices of the transformer blocks whose output h becomes γ⊙h + β",
    )
    gamma_range: tuple[float, float] = (0.5, 2.0)
    beta_range: tuple[float, float] = (-0.5, 0.5)
    controller_rank: int = Field(4, ge=1, le=256, description="bottleneck of the γ/β controller")

    @model_validator(mode="after")
    def _ranges_hold_identity(self) -> "ResidualFilmConfig":
        # identity at init (γ = 1, β = 0) must be reachable, or the variant would not start
        # from the baseline
        g_lo, g_hi = self.gamma_range
        b_lo, b_hi = self.beta_range
        if not g_lo <= 1.0 <= g_hi:
            raise ValueError(f"gamma_range must contain 1.0 (got {list(self.gamma_range)})")
        if not b_lo <= 0.0 <= b_hi:
            raise ValueError(f"beta_range must contain 0.0 (got {list(self.beta_range)})")
        if any(i < 0 for i in self.film_layers):
            raise ValueError(f"film_layers must be >= 0 (got {self.film_layers})")
        if len(set(self.film_layers)) != len(self.film_layers):
            raise ValueError(f"film_layers has duplicates (got {self.film_layers})")
        return self
