"""Output buffers of the kernel launches, with a test hook that fills them with NaN.

Every buffer a kernel writes comes from `new_buffer`. Inside `poisoned()` those buffers start
as NaN instead of uninitialised memory, so a test that finds no NaN in the result has proved
that the kernel wrote every element (an unwritten element of `torch.empty` may happen to hold a
plausible value, which is why poisoning is needed at all).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_poison = False


@contextmanager
def poisoned() -> Iterator[None]:
    """Within this block every kernel output buffer is allocated full of NaN."""
    global _poison
    before, _poison = _poison, True
    try:
        yield
    finally:
        _poison = before


def new_buffer(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """torch.empty, or NaN-filled inside `poisoned()`."""
    if _poison:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)
