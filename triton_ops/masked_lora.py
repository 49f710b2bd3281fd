"""The V1 hot path: x·W + b + scaling·((x·V) ⊙ mask)·Uᵀ.

W is in (in_features, out_features) layout (GPT-2's Conv1D); callers holding nn.Linear pass
`weight.t()`. A mask of None means the static-LoRA baseline (all rank components on), so the
baseline and V1 run the same GEMM shapes through the same function.

`masked_lora` dispatches (triton_ops.dispatch) to the fused Triton kernel
(`_masked_lora_kernels`: torch does x·W, one kernel does shrink, mask, expand, bias and the
sum) or to `masked_lora_reference`. The kernel's autograd gives dx, dV, dU and, when the mask
requires grad (V1's straight-through router does), dmask = scaling·(x·V)⊙(dy·U), so the
router trains the same on both paths. Frozen W and b get no gradient; if they do require one
it is computed with torch rather than dropped.
"""

from __future__ import annotations

import torch

from triton_ops.dispatch import use_triton


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
    """Dispatch point the variants call: shapes as `masked_lora_reference`, any leading dims."""
    if x.numel() == 0 or not use_triton("masked_lora", x, weight, bias, lora_v, lora_u, mask):
        return masked_lora_reference(x, weight, bias, lora_v, lora_u, mask, scaling)
    lead = x.shape[:-1]
    rank = lora_v.shape[1]
    x2d = x.reshape(-1, x.shape[-1])
    mask2d = None if mask is None else mask.expand(*lead, rank).reshape(-1, rank)
    y = MaskedLora.apply(x2d, weight, bias, lora_v, lora_u, mask2d, float(scaling))
    return y.reshape(*lead, y.shape[-1])


class MaskedLora(torch.autograd.Function):
    """Autograd around the fused kernels; x and mask arrive flattened to (tokens, ·)."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_v, lora_u, mask, scaling):
        from triton_ops import _masked_lora_kernels as kernels

        ctx.scaling = scaling
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight, lora_v, lora_u, mask)
        return kernels.forward(x, weight, bias, lora_v, lora_u, mask, scaling)

    @staticmethod
    def backward(ctx, dy):
        from triton_ops import _masked_lora_kernels as kernels

        x, weight, lora_v, lora_u, mask = ctx.saved_tensors
        need_x, need_w, need_b, need_v, need_u, need_m, _ = ctx.needs_input_grad
        dx, dv, du, dm = kernels.backward(
            dy, x, weight, lora_v, lora_u, mask, ctx.scaling, (need_x, need_v, need_u, need_m)
        )
        dw = x.t() @ dy if need_w else None  # frozen in every variant; never silently None
        db = dy.sum(0) if need_b and ctx.has_bias else None
        return dx, dw, db, dv, du, dm, None
