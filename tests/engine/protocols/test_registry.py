"""Selecting a protocol: by the spec's `protocol`, else by its variant; unknown names refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.protocols import registry
from engine.protocols.ab import ABProtocol
from engine.spec import load_spec
from store.errors import BemctlError

REPO = Path(__file__).resolve().parents[3]


def _spec(tmp_path: Path, **changes) -> Path:
    spec = yaml.safe_load((REPO / "experiments" / "v1_dynrank.yml").read_text())
    spec.update(changes)
    path = tmp_path / "v1_dynrank.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_spec_without_protocol_runs_under_its_variants(tmp_path: Path) -> None:
    loaded = load_spec(_spec(tmp_path))
    assert loaded.spec.protocol is None and loaded.spec.protocol_name == "ab"
    assert isinstance(registry.get_protocol(loaded.spec.protocol_name), ABProtocol)
    # the field left unset does not enter the spec's hash: older stores keep their experiments
    assert '"protocol"' not in loaded.spec.canonical_json()


def test_an_explicit_protocol_is_used_and_hashed(tmp_path: Path) -> None:
    loaded = load_spec(_spec(tmp_path, protocol="ab"))
    assert loaded.spec.protocol_name == "ab"
    assert '"protocol": "ab"' in loaded.spec.canonical_json()


def test_an_unknown_protocol_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BemctlError) as caught:
        load_spec(_spec(tmp_path, protocol="streamz"))
    message = str(caught.value)
    assert "protocol" in message and "streamz" in message and "known: ab" in message
    with pytest.raises(BemctlError, match="unknown protocol 'streamz'"):
        registry.get_protocol("streamz")


def test_a_name_registers_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("ab", "engine.protocols.ab:ABProtocol", "again")
