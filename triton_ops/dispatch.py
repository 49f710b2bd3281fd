"""Which implementation an op call takes: the Triton kernel or its pure-torch reference.

The rule, per call, from the `kernels` setting (bemctl.toml; `configure` sets it per process):

- "torch": always the reference.
- "auto" (default): the Triton kernel when every tensor is on CUDA, has one supported dtype
  (fp32, fp16, bf16) and triton imports; otherwise the reference. CPU tensors therefore always
  take the reference under "auto", even with TRITON_INTERPRET=1 set: the interpreter is orders of
  magnitude slower than torch on CPU, and the tiny models the test suite trains must not pay
  for it just because the kernel tests set the variable in the same process.
- "triton": always the kernel. CUDA tensors run it natively; CPU tensors run it under Triton's
  interpreter, which needs TRITON_INTERPRET=1 in the environment before the kernels are
  imported (that is how tests/triton_ops runs them). Anything that cannot run that way is a
  `KernelConfigError` naming `kernels` (at `configure` time when possible), never a crash deep in a
  launch, and never a silent fall-back.

triton is imported lazily: without it everything runs through the references.
"""

from __future__ import annotations

import functools
import os
from typing import Literal

import torch


class KernelConfigError(ValueError):
    """The `kernels` setting asks for what cannot run here; the message is one line naming
    `kernels` (the application turns it into its one-line error)."""


Backend = Literal["auto", "triton", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "torch")
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_backend: str = "auto"


def configure(kernels: str) -> None:
    """Set the process-wide backend; refuse "triton" where the kernels cannot run."""
    global _backend
    if kernels not in BACKENDS:
        raise KernelConfigError(f"kernels = {kernels!r}: expected one of {', '.join(BACKENDS)}")
    if kernels == "triton":
        problem = triton_problem(cuda=torch.cuda.is_available())
        if problem:
            raise KernelConfigError(
                f'kernels = "triton" cannot run here: {problem}; '
                'set kernels = "auto" or "torch" in bemctl.toml'
            )
    _backend = kernels


def backend() -> str:
    return _backend


@functools.cache
def triton_version() -> str | None:
    """The importable triton's version, or None (not installed or broken)."""
    try:
        import triton
    except Exception:  # a broken install must degrade to the torch path, not fail imports
        return None
    return str(triton.__version__)


def interpret_requested() -> bool:
    """TRITON_INTERPRET as triton reads it (1/true/on/yes)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def triton_problem(cuda: bool) -> str | None:
    """Why the kernels cannot run on CUDA (`cuda`) or CPU tensors here; None if they can."""
    if triton_version() is None:
        return "triton is not installed"
    if not cuda and not interpret_requested():
        return "no CUDA device and TRITON_INTERPRET is not 1"
    return None


def kernel_path(kernels: str, cuda: bool) -> str:
    """'native', 'interpreted' or 'torch': where fp32/fp16/bf16 calls go (`bemctl doctor`)."""
    if kernels == "torch" or triton_version() is None:
        return "torch"
    if cuda:
        return "interpreted" if interpret_requested() else "native"
    if kernels == "triton" and interpret_requested():
        return "interpreted"
    return "torch"


def use_triton(op: str, *tensors: torch.Tensor | None) -> bool:
    """True if this call of `op` should launch the Triton kernel (None entries are skipped)."""
    if _backend == "torch":
        return False
    present = [t for t in tensors if t is not None]
    on_cuda = all(t.is_cuda for t in present)
    dtypes = {t.dtype for t in present if t.is_floating_point()}
    dtype_ok = len(dtypes) == 1 and dtypes <= set(SUPPORTED_DTYPES)
    if _backend == "auto":
        return on_cuda and dtype_ok and triton_version() is not None
    if not dtype_ok:
        names = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
        raise KernelConfigError(
            f'kernels = "triton": {op} got {names} inputs; the kernels take one of '
            'float32, float16, bfloat16 (kernels = "auto" uses torch for the rest)'
        )
    if not on_cuda and any(t.is_cuda for t in present):
        raise KernelConfigError(f'kernels = "triton": {op} got tensors on different devices')
    if triton_version() is None:
        raise KernelConfigError(f'kernels = "triton" cannot run {op}: triton is not installed')
    if not on_cuda and not interpret_requested():
        raise KernelConfigError(
            f'kernels = "triton" cannot run {op} on CPU tensors: TRITON_INTERPRET is not 1 '
            '(device = "cpu"?)'
        )
    return True
