"""Prefill routing: chunks that hold prompt tokens are routed from the prompt's own content.

Why: the prompt is known before any K/V is computed, so routing its chunks from what precedes
them (nothing, for chunk 0) throws information away. On the shipped tasks a prompt is 50-115
tokens and `chunk_size` is 64, so with purely causal chunk routing the whole prompt (and the
start of the answer) sat in chunk 0, whose routing came from no token at all: V1 used one
constant mask for 99.99% of prompt tokens, and the router's first chunk was a blind guess.

The rule, shared by V1 and the router (and by their training, full-pass evaluation and cached
decoding alike, so what is trained is what runs):
- a *prompt chunk* is a chunk that starts before the prompt ends (c · chunk_size < P). It is
  routed at prefill from the prompt's tokens only: its own prompt tokens and the prompt up to
  its end. The answer tokens that share the last prompt chunk use its routing (chunk-sticky).
- every later chunk (a *generated chunk*) is routed causally, from the chunk before it and
  everything before it, exactly as before.

Cached K/V stay valid: a prompt chunk's routing depends on prompt tokens only, all of them
present at prefill, and a generated chunk's on tokens before it. A full forward over prompt +
answer therefore routes every chunk as prefill + decoding did, provided it is told where the
prompt ends: `prompt_lengths` (B,) is passed through the forward (training: the number of
masked prompt labels of each row; generation: the prefill length). Without it (None) a
sequence counts as having no prompt and is routed causally throughout.

Sums are taken per chunk over the padded (B, n_chunks, chunk_size, d) view and then
accumulated over chunks, so a prefill (prompt only) and a full pass (prompt + answer, answer
tokens weighted 0) reduce the same values in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

PROMPT_LENGTHS_KEY = "prompt_lengths"  # where a routing cache keeps the prefill's lengths


def prompt_lengths_of(
    prompt_lengths: torch.Tensor | Sequence[int] | int | None,
    batch: int,
    device: torch.device,
    routing_cache: dict | None = None,
) -> torch.Tensor:
    """(B,) long prompt lengths; None = the routing cache's (set at prefill), else 0 (no prompt).

    A given value is also stored in `routing_cache`, so decode steps of the same sequence that
    do not repeat it still route as the prefill did.
    """
    if prompt_lengths is None and routing_cache is not None:
        prompt_lengths = routing_cache.get(PROMPT_LENGTHS_KEY)
    if prompt_lengths is None:
        return torch.zeros(batch, dtype=torch.long, device=device)
    lengths = torch.as_tensor(prompt_lengths, dtype=torch.long, device=device).reshape(-1)
    if lengths.numel() == 1 and batch != 1:
        lengths = lengths.expand(batch)
    if lengths.shape != (batch,):
        raise ValueError(f"prompt_lengths: expected {batch} values (got {lengths.numel()})")
    if bool((lengths < 0).any()):
        raise ValueError("prompt_lengths must be >= 0")
    if routing_cache is not None:
        routing_cache[PROMPT_LENGTHS_KEY] = lengths
    return lengths


@dataclass(frozen=True)
class ChunkPools:
    """Per chunk (B, n_chunks, d) means, and which chunks are prompt chunks (B, n_chunks)."""

    previous: torch.Tensor  # mean of chunk c-1 (0 for chunk 0)
    before: torch.Tensor  # mean of every token before chunk c (0 for chunk 0)
    prompt_own: torch.Tensor  # mean of chunk c's prompt tokens (0 where it has none)
    prompt_through: torch.Tensor  # mean of the prompt tokens up to the end of chunk c
    is_prompt_chunk: torch.Tensor  # bool: chunk c starts before the prompt ends


def chunk_pools(
    embeddings: torch.Tensor, chunk_size: int, prompt_lengths: torch.Tensor | None = None
) -> ChunkPools:
    """Every pooled feature chunk routing reads, from (B, T, d) embeddings of positions 0..T-1."""
    batch, length, dim = embeddings.shape
    n_chunks = max(1, -(-length // chunk_size))
    pad = n_chunks * chunk_size - length
    padded = nn.functional.pad(embeddings, (0, 0, 0, pad))
    sums = padded.view(batch, n_chunks, chunk_size, dim).sum(2)
    counts = torch.full((n_chunks,), float(chunk_size), device=embeddings.device)
    counts[-1] = chunk_size - pad
    counts = counts.to(embeddings.dtype)
    previous = torch.zeros_like(sums)
    previous[:, 1:] = sums[:, :-1] / counts[:-1, None]
    before = torch.zeros_like(sums)
    before[:, 1:] = sums.cumsum(1)[:, :-1] / counts.cumsum(0)[:-1, None]
    starts = torch.arange(n_chunks, device=embeddings.device) * chunk_size
    if prompt_lengths is None:
        prompt_lengths = torch.zeros(batch, dtype=torch.long, device=embeddings.device)
    is_prompt_chunk = starts[None, :] < prompt_lengths[:, None]
    if not bool(is_prompt_chunk.any()):
        zeros = torch.zeros_like(sums)
        return ChunkPools(previous, before, zeros, zeros, is_prompt_chunk)
    positions = torch.arange(n_chunks * chunk_size, device=embeddings.device)
    weight = (positions[None, :] < prompt_lengths[:, None]).to(embeddings.dtype)  # (B, n·cs)
    prompt_sums = (padded * weight[..., None]).view(batch, n_chunks, chunk_size, dim).sum(2)
    prompt_counts = weight.view(batch, n_chunks, chunk_size).sum(2)  # (B, n)
    own = prompt_sums / prompt_counts.clamp(min=1)[..., None]
    through = prompt_sums.cumsum(1) / prompt_counts.cumsum(1).clamp(min=1)[..., None]
    return ChunkPools(previous, before, own, through, is_prompt_chunk)


def rms_normalised(features: torch.Tensor) -> torch.Tensor:
    """Parameter-free RMS normalisation of pooled features (0 stays 0).

    Pooled byte embeddings are small (norm ~0.65 on the embedded model) and a freshly
    initialised predictor's bias dominates them; normalised, the content moves the scores as
    much as the bias does from the first step on. Stateless: nothing to save or count.
    """
    return nn.functional.rms_norm(features, (features.shape[-1],), eps=1e-6)
