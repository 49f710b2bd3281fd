"""Name -> variant registry, in peft's manner: a spec's `bem_config.variant` selects the module.

Configs are imported eagerly (pydantic only, cheap) so specs validate without torch; the model
class is imported lazily from `builder` ("module:attr") the first time a run needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from engine.variants.config_base import VariantConfig
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.film.config import ResidualFilmConfig
from engine.variants.gateshape.config import GateShapingConfig
from engine.variants.kron.config import KroneckerConfig
from engine.variants.lora.config import LoraConfig
from engine.variants.online.config import OnlineShadowConfig
from engine.variants.pending import PENDING
from engine.variants.router.config import RouterBCConfig, RouterPGConfig
from engine.variants.safety.config import SafetyCurveConfig
from store.errors import BemctlError


@dataclass(frozen=True)
class VariantEntry:
    name: str
    config_cls: type[VariantConfig]
    builder: str | None  # "module:Class" of the AdapterModel; None = not implemented yet
    description: str
    protocol: str = "ab"  # the experiment protocol its specs run under by default


def _name(cls: type[VariantConfig]) -> str:
    return cls.model_fields["variant"].default


REGISTRY: dict[str, VariantEntry] = {}


def register(
    config_cls: type[VariantConfig],
    builder: str | None,
    description: str,
    protocol: str = "ab",
) -> None:
    name = _name(config_cls)
    if name in REGISTRY:
        raise ValueError(f"variant {name!r} registered twice")
    REGISTRY[name] = VariantEntry(name, config_cls, builder, description, protocol)


register(LoraConfig, "engine.variants.lora.model:StaticLoraModel", "static LoRA (baseline)")
register(
    DynamicRankConfig,
    "engine.variants.dynrank.model:DynamicRankModel",
    "PT1 + dynamic rank mask",
)
register(
    GateShapingConfig,
    "engine.variants.gateshape.model:GateShapingModel",
    "V2: PT1 + gate shaping (re-ranked passages drive head-group gates)",
)
register(KroneckerConfig, "engine.variants.kron.model:KroneckerModel", "V3: Kronecker @ W_down")
register(
    ResidualFilmConfig,
    "engine.variants.film.model:ResidualFilmModel",
    "V4: residual FiLM micro-gamma,beta",
)
register(
    RouterBCConfig,
    "engine.variants.router.model:RouterModel",
    "AR0: behavioural-cloning router over expert LoRAs",
)
register(
    RouterPGConfig,
    "engine.variants.router.model:RouterModel",
    "AR1: AR0's router refined by policy gradient with a KL trust region",
)
register(
    OnlineShadowConfig,
    "engine.variants.lora.model:StaticLoraModel",  # the deployed adapter is a static LoRA
    "OL: online shadow learning (EWC/proximal), canary gate, drift rollback",
    protocol="online",
)
register(
    SafetyCurveConfig,
    "engine.variants.safety.model:SafetyBasisModel",
    "VC: task LoRA + orthogonal safety basis of strength α, over a safety-utility curve",
    protocol="curve",
)
for _cls in PENDING:
    register(_cls, None, _cls.__doc__ or _name(_cls))


def get_entry(name: str) -> VariantEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise BemctlError(f"unknown variant {name!r}; known: {known}") from None


def model_class(name: str) -> type:
    """The AdapterModel class for `name`; refuses variants whose engine has not landed."""
    entry = get_entry(name)
    if entry.builder is None:
        raise BemctlError(f"not implemented yet: {name}")
    module_name, attr = entry.builder.split(":")
    return getattr(importlib.import_module(module_name), attr)
