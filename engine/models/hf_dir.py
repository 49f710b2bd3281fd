"""What `model.base_model` names, checked from its files alone (no weights, no torch).

Used when a spec is validated or queued (`bemctl validate`, `queue`, `run`, `list`, the
console) and again before loading, so a model directory that could never load, or that
would run its own code, is refused in one line before anything is trained:

- `auto_map` in config.json or tokenizer_config.json names Python files of the directory
  that transformers would import (after asking "run the custom code? [y/N]" on the
  terminal); bemctl never runs them, and loads with `trust_remote_code=False` besides.
- a `model_type` transformers does not know could only load through such code.
- weights only as a pickle (`pytorch_model.bin`, `*.pt`, ...) are refused: unpickling can run
  code, and bemctl loads safetensors only (`use_safetensors=True`).
- the model's positions (`n_positions`, `max_position_embeddings`) bound `model.max_length`;
  its head count (`n_head`, `num_attention_heads`) bounds a variant's head groups.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.limits import MODEL_CONFIG_BYTES, count
from store.errors import BemctlError, shorten

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_NAME = "tiny-gpt2"
EMBEDDED_CONFIG = Path(__file__).with_name("embedded_config.json")

SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
POSITION_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")
HEAD_KEYS = ("n_head", "num_attention_heads")


@dataclass(frozen=True)
class ModelFacts:
    """What validation needs to know about a base model."""

    name: str
    positions: int | None  # longest sequence it has position embeddings for
    positions_key: str  # where that number comes from, for messages
    heads: int | None = None  # attention heads per layer, when the config says


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A small JSON object file of a model directory, or a one-line BemctlError."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise BemctlError(f"{what}: not a regular file")
        if info.st_size > MODEL_CONFIG_BYTES:
            raise BemctlError(
                f"{what}: larger than {count(MODEL_CONFIG_BYTES)} bytes, the limit for it"
            )
        with path.open("rb") as fh:
            raw = fh.read(MODEL_CONFIG_BYTES + 1)
    except OSError as exc:
        raise BemctlError(f"{what}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BemctlError(f"{what}: not UTF-8 (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BemctlError(f"{what}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise BemctlError(f"{what}: invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise BemctlError(f"{what}: expected a JSON object (got {type(data).__name__})")
    return data


def _positions(config: dict[str, Any]) -> tuple[int | None, str]:
    for key in POSITION_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, key
    return None, ""


def _heads(config: dict[str, Any]) -> int | None:
    for key in HEAD_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _known_model_types() -> frozenset[str]:
    # Imported only for local directories: it loads transformers (and torch).
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return frozenset(CONFIG_MAPPING_NAMES)


def check_base_model(name: str) -> ModelFacts:
    """Fail now, when an experiment is validated or queued, on a base model that could
    never load or would run code of its own; messages start with `model.base_model`."""
    if name.startswith(EMBEDDED_PREFIX):
        if name[len(EMBEDDED_PREFIX) :] != EMBEDDED_NAME:
            raise BemctlError(
                f"model.base_model: unknown embedded model {shorten(repr(name))} "
                f"(known: {EMBEDDED_PREFIX}{EMBEDDED_NAME})"
            )
        embedded = json.loads(EMBEDDED_CONFIG.read_text())
        positions, key = _positions(embedded)
        return ModelFacts(name, positions, key, _heads(embedded))
    directory = Path(name)
    where = f"model.base_model: {shorten(str(directory))}"
    if not directory.is_dir():
        raise BemctlError(
            f"{where} is neither '{EMBEDDED_PREFIX}{EMBEDDED_NAME}' "
            "nor a local directory (bemctl never downloads models)"
        )
    if not (directory / "config.json").is_file():
        raise BemctlError(f"{where}: no config.json (not a saved HF model)")
    config = read_json_object(directory / "config.json", f"{where}: config.json")
    for file, data in (("config.json", config), ("tokenizer_config.json", None)):
        if data is None:
            path = directory / file
            if not path.exists():
                continue
            data = read_json_object(path, f"{where}: {file}")
        if "auto_map" in data:
            raise BemctlError(
                f"{where}: {file} has auto_map (custom Python code in the model directory); "
                "bemctl never runs a model's own code"
            )
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise BemctlError(f"{where}: config.json: model_type: missing (not a saved HF model)")
    if model_type not in _known_model_types():
        raise BemctlError(
            f"{where}: config.json: model_type {shorten(repr(model_type))} is not a model "
            "transformers knows; it could only load through the directory's own code, "
            "which bemctl never runs"
        )
    files = {p.name for p in directory.iterdir()}
    if not any(f in files for f in SAFE_WEIGHTS):
        pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise BemctlError(
                f"{where}: cannot load: its weights are a pickle ({shorten(', '.join(pickles))}), "
                "which can run code when read; bemctl loads safetensors only (save the model "
                "with save_pretrained(..., safe_serialization=True))"
            )
        raise BemctlError(f"{where}: cannot load: no model.safetensors in it")
    positions, key = _positions(config)
    return ModelFacts(str(directory), positions, key, _heads(config))
