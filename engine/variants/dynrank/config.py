"""V1 knobs: how many rank components stay active, how often the routing may change, and how
finely PT1 gates the attention heads.

`head_groups` must divide the model's attention heads (checked from the model's config when
the spec is validated, and again when the model is built); the embedded GPT-2 has 4 heads, so
1, 2 or 4. Each
(layer, group) gate costs `predictor_hidden` + 1 parameters: 16 gates add 144 to the
predictor's 1,320 on the embedded model (+2.2% trainable parameters over the static LoRA).
"""

from typing import Literal

from pydantic import Field, model_validator

from engine.variants.config_base import VariantConfig


class DynamicRankConfig(VariantConfig):
    variant: Literal["pt1_dynamic_rank"] = "pt1_dynamic_rank"
    active_ratio: float = Field(0.5, gt=0, le=1, description="k = round(active_ratio * r) active")
    chunk_size: int = Field(64, ge=1, description="tokens per chunk; a chunk's mask is sticky")
    predictor_hidden: int = Field(8, ge=1, description="bottleneck width of the mask predictor")
    head_groups: int = Field(
        4,
        ge=1,
        description="PT1: each layer's attention heads split into this many gated groups "
        "(must divide the head count)",
    )
    temperature: float = Field(1.0, gt=0, description="sigmoid temperature of the STE surrogate")

    @property
    def k_active(self) -> int:
        return max(1, round(self.active_ratio * self.rank_dimension))

    @model_validator(mode="after")
    def _k_within_rank(self) -> "DynamicRankConfig":
        if self.k_active > self.rank_dimension:
            raise ValueError("active_ratio * rank_dimension exceeds rank_dimension")
        return self

    def model_problems(self, heads: int | None) -> list[str]:
        if heads is not None and heads % self.head_groups:
            return [
                f"bem_config.head_groups: {self.head_groups} does not divide the model's "
                f"{heads} attention heads"
            ]
        return []
