"""Fused adapter kernels, each with a pure-torch reference that is also the CPU path.

Each op module holds the reference, the autograd Function around its Triton kernels (in
`_<op>_kernels.py`, imported only when a kernel runs) and the dispatch point the variants call;
`dispatch` decides per call which path runs (see its docstring and README "Kernels").
"""

from triton_ops.dispatch import KernelConfigError, configure
from triton_ops.film import film, film_reference
from triton_ops.kron_delta import kron_delta, kron_delta_reference
from triton_ops.masked_lora import masked_lora, masked_lora_reference

__all__ = [
    "KernelConfigError",
    "configure",
    "film",
    "film_reference",
    "kron_delta",
    "kron_delta_reference",
    "masked_lora",
    "masked_lora_reference",
]
