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


PENDING = [
    MultimodalConfig,
]
