"""No variant config field is accepted and ignored: each implemented variant's code reads every
field of its config (V1's `head_groups` was once accepted and silently unused).

A static check, so it costs nothing: every field must appear as an attribute read
(`.field`) in the variant's own package (the router's training stages included) or the code
it shares (engine/variants/*.py). Variants whose engine has not landed are refused by
`bemctl run` ("not implemented yet") and are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.protocols.registry import PROTOCOLS
from engine.variants.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
SHARED = sorted((ROOT / "engine" / "variants").glob("*.py"))


def _package(target: str) -> Path:
    return ROOT / Path(*target.split(":")[0].split(".")[:-1])


def _sources(name: str, builder: str) -> str:
    """The variant's package, the shared variant code and, for a variant run by a protocol
    of its own (OL's knobs are the stream's, read by engine/protocols/online/), that
    protocol's package."""
    files = [*_package(builder).glob("*.py"), *SHARED]
    protocol = REGISTRY[name].protocol
    if protocol != "ab":
        files += _package(PROTOCOLS[protocol].target).glob("*.py")
        files += _package(REGISTRY[name].config_cls.__module__ + ":").glob("*.py")
    return "\n".join(f.read_text() for f in files)


IMPLEMENTED = sorted((n, e) for n, e in REGISTRY.items() if e.builder is not None)


@pytest.mark.parametrize("name, entry", IMPLEMENTED, ids=[n for n, _ in IMPLEMENTED])
def test_every_config_field_is_read_by_the_variant(name: str, entry) -> None:
    code = _sources(name, entry.builder)
    unread = [
        field
        for field in entry.config_cls.model_fields
        if not re.search(rf"\.{re.escape(field)}\b", code)
    ]
    assert not unread, f"{name}: fields accepted but never read: {unread}"


def test_the_check_would_catch_an_unread_field() -> None:
    assert not re.search(
        r"\.never_read_knob\b", _sources("static_lora", REGISTRY["static_lora"].builder)
    )
