"""Fused adapter kernels, each with a pure-torch reference that is also the CPU path.

Today every op dispatches to its reference; the Triton kernels land with their own issue and
must match these references (the tests compare against them).
"""

from triton_ops.film import film, film_reference
from triton_ops.kron_delta import kron_delta, kron_delta_reference
from triton_ops.masked_lora import masked_lora, masked_lora_reference

__all__ = [
    "film",
    "film_reference",
    "kron_delta",
    "kron_delta_reference",
    "masked_lora",
    "masked_lora_reference",
]
