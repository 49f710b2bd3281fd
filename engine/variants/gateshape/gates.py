"""PT1 head-group gates: per layer, each group of attention heads has its output scaled.

Why gates on head groups, before the attention output projection: heads specialise (some copy
from the evidence, some track position or syntax), so how much the answer should lean on the
copying heads depends on how clear the evidence is. A gate scales a group's slice of the merged
head outputs, which is exactly the group's contribution to the projection's output.

Each gate is 2·sigmoid((w·f + b) / τ) with f the ranking features (margin, entropy): inside
(0, 2), and exactly 1 at init because w and b start at zero, so the variant starts at its
static-LoRA baseline. τ is a learned temperature per (layer, group), floored at
`min_temperature` (the config's, default 0.1, as in the design's clamp): it calibrates how
sharply each group reacts to the same evidence.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class HeadGroupGates(nn.Module):
    """(B, F) ranking features -> (B, n_layers, n_groups) gates in (0, 2), 1 at init."""

    def __init__(
        self,
        n_layers: int,
        n_groups: int,
        n_features: int,
        dtype: torch.dtype,
        *,
        min_temperature: float,
    ) -> None:
        super().__init__()
        self.min_temperature = min_temperature
        self.weight = nn.Parameter(torch.zeros(n_layers, n_groups, n_features, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_layers, n_groups, dtype=dtype))
        start = math.log(1.0 - min_temperature)  # τ = 1 at init
        self.log_temperature = nn.Parameter(torch.full((n_layers, n_groups), start, dtype=dtype))

    def temperature(self) -> torch.Tensor:
        return self.min_temperature + self.log_temperature.exp()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n_layers, n_groups, n_features = self.weight.shape
        logits = features @ self.weight.view(-1, n_features).t()
        logits = logits.view(-1, n_layers, n_groups) + self.bias
        return 2.0 * torch.sigmoid(logits / self.temperature())


def channel_groups(n_channels: int, n_heads: int, n_groups: int) -> torch.Tensor:
    """(n_channels,) group index of each channel of the merged head outputs.

    Heads are contiguous channel slices (head h = channels h·hd .. (h+1)·hd - 1, as GPT-2 and
    Llama merge them); group g holds heads with h·n_groups // n_heads == g, so groups differ by
    at most one head when n_heads is not a multiple of n_groups.
    """
    head = torch.arange(n_channels) // (n_channels // n_heads)
    return head * n_groups // n_heads
