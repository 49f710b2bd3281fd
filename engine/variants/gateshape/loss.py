"""V2's auxiliary loss: learn to rank the evidence, and gate only as hard as the ranking is right.

    L = CE(softmax(s), relevant)  +  mean_b (1 - p_relevant,b)·strength_b,
    strength_b = mean over (layer, group) of (gate - 1)²

The first term is the re-ranker's supervision: plain next-token loss reaches the re-ranker only
through the gates, which start at identity, so without it the re-ranker would get no signal at
all early on. The second is the margin alignment: the gates are a function of the ranking's
margin and entropy, and this term charges every unit of shaping (distance from identity) with
the probability that the ranking is wrong. Shaping where the re-ranker is right is free, so the
LM loss alone decides *which* way a group is gated; shaping on margins that usually come with a
wrong ranking is penalised, so the controller learns gate strength as a calibrated, increasing
function of the margin. p_relevant is detached so this term cannot be lowered by making the
re-ranker more confident (that is the first term's job), only by gating less when unsure.
The design sketch's alternative (MSE between the margin and a margin predicted from the query)
would fit a number nothing downstream uses; here the margin's consumer, the gates, is aligned.
"""

from __future__ import annotations

import torch
from torch import nn


def margin_alignment_loss(
    scores: torch.Tensor, gates: torch.Tensor, relevant: torch.Tensor
) -> torch.Tensor:
    """scores (N, K), gates (N, n_layers, n_groups), relevant (N,) passage indices -> scalar."""
    log_p = scores.log_softmax(-1)
    ranking = nn.functional.nll_loss(log_p, relevant)
    p_relevant = log_p.gather(1, relevant[:, None])[:, 0].exp().detach()
    strength = (gates - 1.0).square().mean((1, 2))
    return ranking + ((1.0 - p_relevant) * strength).mean()
