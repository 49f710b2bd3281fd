"""Build the adapter model of one arm (baseline or variant) the same way everywhere.

Training, evaluation and the memory probe's child process all go through this, so a probe
measures exactly the model that was trained.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from engine.variants.base import AdapterModel
from engine.variants.config_base import VariantConfig
from engine.variants.lora.config import LoraConfig
from engine.variants.registry import model_class
from store.errors import BemctlError


def build_adapter_model(
    role: str, config: VariantConfig, base_model: nn.Module, seed: int, where: Path | str
) -> AdapterModel:
    """Copy of the frozen base + this arm's adapter; same seed -> same LoRA initialisation.

    A variant whose baseline is another variant (AR1 against AR0) gets that variant's model
    as its baseline arm; every other baseline is the static LoRA of the same budget.
    """
    torch.manual_seed(seed)
    model_copy = copy.deepcopy(base_model)
    try:
        borrowed = config.baseline_variant_config() if role == "baseline" else None
        if borrowed is not None:
            return model_class(borrowed.variant)(model_copy, borrowed)
        if role == "baseline":
            from engine.variants.lora.model import StaticLoraModel

            rank = config.baseline_rank_dimension
            lora = LoraConfig(
                rank_dimension=rank,
                # same scaling (alpha / r) as the variant's own adapters
                lora_alpha=config.lora_alpha * rank / config.rank_dimension,
                target_modules=config.target_modules,
            )
            return StaticLoraModel(model_copy, lora)
        return model_class(config.variant)(model_copy, config)
    except ValueError as exc:
        raise BemctlError(f"{where}: {exc}") from None
