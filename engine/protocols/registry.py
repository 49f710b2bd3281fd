"""Name -> experiment protocol. A spec names its protocol in `protocol:`; without it, its
variant's registry entry says which one it needs (every variant so far: "ab").

Protocols register by module path ("module:Class") and are imported on first use, so specs
validate without importing torch; a test (or a plug-in) may `register` its own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from store.errors import BemctlError

if TYPE_CHECKING:
    from engine.protocols.base import ExperimentProtocol


@dataclass(frozen=True)
class ProtocolEntry:
    name: str
    target: str  # "module:Class" of the ExperimentProtocol
    description: str


PROTOCOLS: dict[str, ProtocolEntry] = {}
DEFAULT_PROTOCOL = "ab"


def register(name: str, target: str, description: str) -> None:
    if name in PROTOCOLS:
        raise ValueError(f"protocol {name!r} registered twice")
    PROTOCOLS[name] = ProtocolEntry(name, target, description)


def unregister(name: str) -> None:
    """Drop a protocol a test registered (the built-in ones stay)."""
    PROTOCOLS.pop(name, None)


register(
    "ab",
    "engine.protocols.ab:ABProtocol",
    "baseline arm vs variant arm, trained alike, scored on the same eval examples",
)


register(
    "online",
    "engine.protocols.online.protocol:OnlineProtocol",
    "a deployed adapter serves a drifting stream; its shadow learns online, promoted on a "
    "canary, rolled back on drift; against the same adapter never updated",
)

register(
    "curve",
    "engine.protocols.curve.protocol:CurveProtocol",
    "baseline vs a variant whose strength α is chosen on a validation curve, then compared "
    "on the test split at that α",
)


def known() -> str:
    return ", ".join(sorted(PROTOCOLS))


def get_protocol(name: str) -> ExperimentProtocol:
    try:
        entry = PROTOCOLS[name]
    except KeyError:
        raise BemctlError(f"unknown protocol {name!r} (known: {known()})") from None
    module_name, attr = entry.target.split(":")
    return getattr(importlib.import_module(module_name), attr)()
