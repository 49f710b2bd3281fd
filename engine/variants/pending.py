"""Configs of the variants whose engines have not landed yet.

Their specs validate today (so `bemctl validate` covers all nine experiments) and `bemctl run`
refuses them with "not implemented yet: <variant>" until their issue lands.
"""

from typing import Literal

from pydantic import Field

from engine.variants.config_base import VariantConfig


class MultimodalConfig(VariantConfig):
    variant: Literal["multimodal_mini"] = "multimodal_mini"
    patch_size: int = Field(4, ge=1)
    vision_dim: int = Field(32, ge=1)


class SafetyCurveConfig(VariantConfig):
    variant: Literal["safety_curve"] = "safety_curve"
    safety_rank: int = Field(4, ge=1)
    curve_points: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])


PENDING = [
    MultimodalConfig,
    SafetyCurveConfig,
]
