"""Resolve the configured device once, with a clear error when CUDA is asked for but absent."""

from __future__ import annotations

import torch

from store.errors import BemctlError


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise BemctlError("device: 'cuda' requested but no CUDA device is available (got cuda)")
    return torch.device(setting)
