"""PT1's plumbing, shared by V1 and V2: find the attention output projections and the heads.

PT1 is head-group attention gating: the heads of each layer are split into `head_groups`
groups and each group's slice of the merged head outputs is scaled by a gate before the
attention output projection (a forward pre-hook), which is exactly that group's contribution
to the projection's output. V1 decides its gates per chunk with its rank mask; V2 once per
prompt from its re-ranked evidence.
"""

from __future__ import annotations

from torch import nn

from engine.variants.base import LoraLayer
from engine.variants.gateshape.gates import channel_groups
from store.errors import BemctlError

_OUTPUT_PROJECTIONS = ("attn.c_proj", "self_attn.o_proj")  # GPT-2, Llama-style

__all__ = [
    "attention_modules",
    "attention_output_projections",
    "channel_groups",
    "in_channels",
    "n_heads",
]


def attention_output_projections(model: nn.Module, variant: str) -> list[nn.Module]:
    """The modules that take the merged head outputs, in block order."""
    found = [m for name, m in model.named_modules() if name.endswith(_OUTPUT_PROJECTIONS)]
    if not found:
        raise BemctlError(
            f"{variant}: {type(model).__name__} has no attention output projection "
            f"(looked for modules named *{' or *'.join(_OUTPUT_PROJECTIONS)})"
        )
    return found


def attention_modules(model: nn.Module, variant: str) -> list[nn.Module]:
    """The attention modules (parents of the output projections), in block order."""
    names = [name for name, _ in model.named_modules() if name.endswith(_OUTPUT_PROJECTIONS)]
    if not names:
        attention_output_projections(model, variant)  # raises the explanation
    return [model.get_submodule(name.rsplit(".", 1)[0]) for name in names]


def in_channels(module: nn.Module) -> int:
    """Input width of a projection (a LoraLayer, an nn.Linear or GPT-2's Conv1D)."""
    if isinstance(module, LoraLayer | nn.Linear):
        return module.in_features
    return int(module.weight.shape[0])  # GPT-2 Conv1D stores W as (in, out)


def n_heads(model: nn.Module, variant: str) -> int:
    config = getattr(model, "config", None)
    heads = getattr(config, "n_head", None) or getattr(config, "num_attention_heads", None)
    if not heads:
        raise BemctlError(f"{variant}: cannot tell the head count of {type(model).__name__}")
    return int(heads)
