"""The V1 hot path: x·W + b + scaling·((x·V) ⊙ mask)·Uᵀ.

W is in (in_features, out_features) layout (GPT-2's Conv1D); callers holding nn.Linear pass
`weight.t()`. A mask of None means the static-LoRA baseline (all rank components on), so the
baseline and V1 run the same GEMM shapes through the same function.
"""

from __future__ import annotations

import torch


def masked_lora_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_v: torch.Tensor,
    lora_u: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float,
) -> torch.Tensor:
    """x: (..., in), weight: (in, out), lora_v: (in, r), lora_u: (out, r), mask: (..., r)."""
    base = x @ weight
    if bias is not None:
        base = base + bias
    shrink = x @ lora_v
    if mask is not None:
        shrink = shrink * mask
    return base + scaling * (shrink @ lora_u.t())


def masked_lora(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_v: torch.Tensor,
    lora_u: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float,
) -> torch.Tensor:
    """Dispatch point the variants call; only the torch reference exists so far."""
    return masked_lora_reference(x, weight, bias, lora_v, lora_u, mask, scaling)
