"""The tiny cross-encoder that re-ranks a prompt's passages against its question.

Why late interaction over bigram features, not one mean-pooled vector per line: a passage is
relevant because it contains the *asked key*, a few tokens among twenty. Mean pooling turns a
line into a bag of bytes in which the key is diluted and its letter order lost, so a near-miss
key ("abx" for "abc") scores about as high as the real one. Instead every token gets a feature
from its own and its predecessor's frozen embedding (a learned bigram: "abc" has "bc", "abx"
has not), every question token is matched with its best match in the passage (max
similarity, as ColBERT's late interaction), and the passage score is the mean over question
tokens. It is still a cross-encoder in the sense that matters here: the score is computed from
question and passage tokens jointly.

Embeddings are layer-normalised without parameters first (embedding scales differ across base
models). Everything runs once per prompt, so its cost is a prefill cost only.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PassageReranker(nn.Module):
    """(B, T, d) frozen embeddings + each token's line index -> (B, K) passage scores."""

    def __init__(self, dim: int, width: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.dim, self.width = dim, width
        # one projection of [e_t, e_(t-1)]: a learned bigram feature in a single GEMM
        self.bigram = nn.Linear(2 * dim, width, bias=False, dtype=dtype)

    def token_features(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, T, width): a learned bigram feature of token t and token t-1."""
        normed = nn.functional.layer_norm(embeddings, (self.dim,))
        before = nn.functional.pad(normed[:, :-1], (0, 0, 1, 0))
        return self.bigram(torch.cat([normed, before], dim=-1))

    def forward(
        self, embeddings: torch.Tensor, line: torch.Tensor, n_passages: int
    ) -> torch.Tensor:
        """`line` (B, T): line index of each token (-1 on newlines, see `layout`); lines
        0..K-1 are the passages and line K the question, and none of them may be empty
        (`PromptLayout.valid`)."""
        feats = self.token_features(embeddings)
        sim = feats @ feats.transpose(1, 2)  # (B, T, T): query-side token t, passage-side u
        k = n_passages
        # max over each passage's tokens in one scatter: bin k collects everything else
        bins = torch.where(line < 0, k, line.clamp(max=k))[:, None, :].expand_as(sim)
        empty = sim.new_full((*sim.shape[:2], k + 1), float("-inf"))
        best = empty.scatter_reduce(2, bins, sim, "amax")[..., :k]  # (B, T, K) per token t
        question = (line == k).to(sim.dtype)[:, :, None]  # (B, T, 1)
        return (best * question).sum(1) / (question.sum(1) * math.sqrt(self.width))


def ranking_features(scores: torch.Tensor) -> torch.Tensor:
    """(B, K) scores -> (B, 2): margin (top minus median) and the softmax entropy over log K.

    A large margin and a low entropy both say "one passage clearly wins"; the gates read both
    because they disagree when two passages tie for first (high margin over the median, but
    a high entropy).
    """
    n = scores.shape[-1]
    ordered = scores.sort(dim=-1, descending=True).values
    median = 0.5 * (ordered[:, (n - 1) // 2] + ordered[:, n // 2])
    log_p = scores.log_softmax(-1)
    entropy = -(log_p.exp() * log_p).sum(-1) / math.log(n)
    return torch.stack([ordered[:, 0] - median, entropy], dim=-1)
