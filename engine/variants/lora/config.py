"""Static LoRA has no fields beyond the shared geometry."""

from typing import Literal

from engine.variants.config_base import VariantConfig


class LoraConfig(VariantConfig):
    variant: Literal["static_lora"] = "static_lora"
