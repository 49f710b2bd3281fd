"""How dynamic a run's routing really was, measured on the evaluated sequences.

A "dynamic" variant that applies one mask (or one router action) to almost every token is a
static adapter with extra parameters, and its verdict should be read as such. Per run, over
every token the evaluation fed to the model (prompt and generated), the routing each token got
is looked up with the model's `routing_decisions(ids, prompt_lengths=...)` (the routing of the
whole sequence at once, which the KV-cache check proves equal to what cached decoding
applied), and summarised as:

- `distinct`: how many different masks / actions were used;
- `entropy_bits`: Shannon entropy (bits) of their distribution over tokens (0 = one for all,
  log2(distinct) = all used equally);
- `top_share`: the share of tokens under the most common one;
- `static`: top_share >= STATIC_SHARE (the report labels such a run static),

for all tokens and split into prompt and generated tokens. A mask is V1's whole k-hot
pattern over every block (two tokens share a mask only if every block's mask is the same);
an action is the router's (expert, span, rank budget, bias scale) code.

`gate_movement` summarises continuous gates (V1's and V2's head-group gates): mean |g - 1|
per (layer, head group) and overall, so a run whose gates never left identity shows it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from engine.variants.base import AdapterModel

STATIC_SHARE = 0.99  # one mask/action for at least this share of tokens = static routing


def distribution(counts: Counter) -> dict:
    """Summary of a token count per routing key (JSON-ready)."""
    tokens = sum(counts.values())
    if tokens == 0:
        return {"tokens": 0, "distinct": 0, "entropy_bits": 0.0, "top_share": None, "static": None}
    probs = [c / tokens for c in counts.values()]
    entropy = -sum(p * math.log2(p) for p in probs if p > 0)
    top = max(counts.values()) / tokens
    return {
        "tokens": tokens,
        "distinct": len(counts),
        "entropy_bits": max(0.0, entropy),  # -0.0 for a single key
        "top_share": top,
        "static": top >= STATIC_SHARE,
    }


def _keys(routing: torch.Tensor) -> list[bytes]:
    """One hashable key per position of (T, ...) routing decisions."""
    rows = routing.reshape(routing.shape[0], -1).cpu().contiguous().numpy()
    return [row.tobytes() for row in rows]


@torch.no_grad()
def routing_dynamics(
    model: AdapterModel, sequences: Sequence[tuple[Sequence[int], int]], device: torch.device
) -> dict | None:
    """Dynamics of `model`'s routing over `sequences` ((ids fed, prompt length) per evaluated
    example); None for a model without per-position routing (`AdapterModel.routes` False)."""
    if not model.routes or not sequences:
        return None
    counts = {"all": Counter(), "prompt": Counter(), "generated": Counter()}
    for ids, prompt_length in sequences:
        x = torch.tensor([list(ids)], device=device)
        used = model.routing_decisions(
            x, prompt_lengths=torch.tensor([prompt_length], device=device)
        )[0]
        keys = _keys(used)
        counts["all"].update(keys)
        counts["prompt"].update(keys[:prompt_length])
        counts["generated"].update(keys[prompt_length:])
    summary = {part: distribution(c) for part, c in counts.items()}
    return {
        "unit": model.routing_unit,
        "sequences": len(sequences),
        **summary,
        "static": bool(summary["all"]["static"]),
        "static_share": STATIC_SHARE,
    }


def gate_movement(gates: torch.Tensor) -> dict:
    """(N, n_layers, n_groups) gates (one row per prompt or token) -> mean |g - 1| per layer
    and group, overall, and the largest single deviation (JSON-ready)."""
    if gates.ndim != 3:
        raise ValueError(f"gates: expected (N, layers, groups) (got {tuple(gates.shape)})")
    if gates.shape[0] == 0:
        return {"n": 0, "mean_abs_dev": None, "overall": None, "max_abs_dev": None}
    deviation = (gates.double() - 1.0).abs()
    return {
        "n": int(gates.shape[0]),
        "mean_abs_dev": deviation.mean(0).tolist(),
        "overall": float(deviation.mean()),
        "max_abs_dev": float(deviation.max()),
    }
