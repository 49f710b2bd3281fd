"""Kernel tests run the Triton kernels on the CPU under Triton's interpreter.

TRITON_INTERPRET must be in the environment before triton builds the kernels, which happens
when a kernel module is first imported (lazily, on the first kernel call), so it is set here at
import time, before any test runs. It stays set for the rest of the pytest process; that does
not move any other test onto the (slow) interpreter, because under the default kernels = "auto"
CPU tensors always take the torch reference (triton_ops.dispatch). Only tests that request the
`triton_kernels` fixture select kernels = "triton".
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ["TRITON_INTERPRET"] = "1"  # tests/conftest.py sets it too, before triton's import


@pytest.fixture
def triton_kernels() -> Iterator[None]:
    """kernels = "triton" for one test (interpreted here), restored afterwards."""
    from triton_ops import _tl, dispatch

    assert _tl.INTERPRETED, "the kernels were built before TRITON_INTERPRET=1 was set"
    before = dispatch.backend()
    dispatch.configure("triton")
    try:
        yield
    finally:
        dispatch.configure(before)
