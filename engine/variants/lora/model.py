"""Static LoRA: every rank component always on. The comparison's baseline."""

from engine.variants.base import AdapterModel


class StaticLoraModel(AdapterModel):
    pass
