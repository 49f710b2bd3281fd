"""Pieces shared by the Triton kernels (imports triton: load only on the kernel path)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from triton_ops.dispatch import KernelConfigError

# Whether @triton.jit built interpreter functions: fixed when the kernel modules are imported.
INTERPRETED: bool = bool(triton.knobs.runtime.interpret)


@triton.jit
def mma(a, b, acc, UPCAST: tl.constexpr):
    """acc + a·b with fp32 accumulation (2-D or batched 3-D operands).

    UPCAST multiplies in full fp32 ("ieee", not tf32): the fp32 kernels must match a float64
    reference to 1e-5. It is also set for half-precision inputs under the interpreter, whose
    dot multiplies bf16 bit patterns as integers (triton 3.9); a bf16·bf16 product is exact in
    fp32, so the upcast changes nothing but speed. Natively, half inputs use tensor cores.
    """
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(a, b, acc)


def upcast(dtype: torch.dtype) -> bool:
    return dtype == torch.float32 or INTERPRETED


def block(size: int, lo: int = 16, hi: int = 64) -> int:
    """A power-of-two tile edge covering `size`, within [lo, hi] (tl.dot needs >= 16)."""
    return max(lo, min(hi, triton.next_power_of_2(max(int(size), 1))))


def check_device(*tensors: torch.Tensor) -> None:
    """CPU tensors only work with interpreter-built kernels; say so instead of crashing."""
    if not INTERPRETED and any(not t.is_cuda for t in tensors):
        raise KernelConfigError(
            'kernels = "triton": CPU tensors need TRITON_INTERPRET=1 set before the '
            "kernels are first imported"
        )
