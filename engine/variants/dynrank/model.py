"""V1: a k-hot mask over each block's rank components, decided once per chunk.

Why chunk-sticky: the mask of chunk c is predicted from the pooled token embeddings of chunk
c-1 (chunk 0 uses the predictor's bias alone), so tokens already in the KV cache never see
their routing change after the fact, and cached generation stays exact.

Why a straight-through estimator: top-k is not differentiable; the forward uses the hard
k-hot mask (same GEMM shapes as the baseline, only an elementwise product added) while the
backward flows through sigmoid(scores / temperature).

The predictor is one small bottleneck MLP shared by all blocks (pooled d_model features ->
hidden -> n_blocks * r logits) so its parameters stay within a few percent of the LoRA's.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.variants.base import AdapterModel
from engine.variants.dynrank.config import DynamicRankConfig


def k_hot_ste(scores: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """Hard top-k mask in the forward pass, sigmoid surrogate gradient in the backward."""
    top = scores.topk(k, dim=-1).indices
    hard = torch.zeros_like(scores).scatter_(-1, top, 1.0)
    soft = torch.sigmoid(scores / temperature)
    return hard + (soft - soft.detach())  # exact 0/1 forward; (hard + soft) - soft rounds


def chunk_features(embeddings: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """(B, T, d) -> (B, n_chunks, d): feature for chunk c is the mean embedding of chunk c-1."""
    batch, length, dim = embeddings.shape
    n_chunks = (length + chunk_size - 1) // chunk_size
    pad = n_chunks * chunk_size - length
    padded = nn.functional.pad(embeddings, (0, 0, 0, pad))
    counts = torch.full((n_chunks,), float(chunk_size), device=embeddings.device)
    counts[-1] = chunk_size - pad
    pooled = padded.view(batch, n_chunks, chunk_size, dim).sum(2) / counts[None, :, None]
    previous = torch.zeros_like(pooled)
    previous[:, 1:] = pooled[:, :-1]
    return previous


class DynamicRankModel(AdapterModel):
    config: DynamicRankConfig

    def __init__(self, base_model: nn.Module, config: DynamicRankConfig) -> None:
        super().__init__(base_model, config)
        dim = base_model.get_input_embeddings().embedding_dim
        rank = config.rank_dimension
        dtype = base_model.get_input_embeddings().weight.dtype
        self.predictor = nn.Sequential(
            nn.Linear(dim, config.predictor_hidden, dtype=dtype),
            nn.GELU(),
            nn.Linear(config.predictor_hidden, self.n_blocks * rank, dtype=dtype),
        )
        self.last_masks: torch.Tensor | None = None  # (B, n_chunks, n_blocks, r) for inspection

    def block_masks(self, all_ids: torch.Tensor, first_chunk: int = 0) -> torch.Tensor:
        """Masks for chunks `first_chunk`.. of `all_ids`: (B, n_chunks - first_chunk, blocks, r).

        Only the chunks the current forward touches are computed (one chunk per decoded
        token), which keeps cached generation O(chunk) per token rather than O(length).
        """
        cfg = self.config
        lo = max(0, (first_chunk - 1) * cfg.chunk_size)
        with torch.no_grad():
            embeddings = self.base_model.get_input_embeddings()(all_ids[:, lo:])
        feats = chunk_features(embeddings, cfg.chunk_size)
        if first_chunk > 0:
            feats = feats[:, 1:]  # drop the chunk that only served as context
        scores = self.predictor(feats).view(*feats.shape[:2], self.n_blocks, cfg.rank_dimension)
        if not torch.is_grad_enabled():
            top = scores.topk(cfg.k_active, dim=-1).indices
            return torch.zeros_like(scores).scatter_(-1, top, 1.0)
        return k_hot_ste(scores, cfg.k_active, cfg.temperature)

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
    ) -> None:
        start = 0 if context_ids is None else context_ids.shape[1]
        total = start + input_ids.shape[1]
        first_chunk = start // self.config.chunk_size
        single_chunk = (total - 1) // self.config.chunk_size == first_chunk
        trace = routing_cache.get("trace") if routing_cache is not None else None
        if routing_cache is not None and single_chunk and routing_cache.get("chunk") == first_chunk:
            self._use_folded(routing_cache["folded"])  # decode step in an already-routed chunk
            if trace is not None:
                trace.append(routing_cache["chunk_masks"].expand(1, input_ids.shape[1], -1, -1))
            return
        all_ids = input_ids if context_ids is None else torch.cat([context_ids, input_ids], 1)
        masks = self.block_masks(all_ids, first_chunk)
        self.last_masks = masks.detach()
        if trace is not None:
            positions = torch.arange(start, total, device=input_ids.device)
            trace.append(masks[:, positions // self.config.chunk_size - first_chunk].detach())
        if single_chunk:  # every current token sits in one chunk (decode steps)
            blocks = [masks[:, :1, b] for b in range(self.n_blocks)]  # (B, 1, r) broadcasts
            if routing_cache is not None and not torch.is_grad_enabled() and masks.shape[0] == 1:
                folded = {
                    name: layer.lora_v * blocks[layer.block_index][0, 0]
                    for name, layer in self.lora_layers.items()
                }
                routing_cache.update(chunk=first_chunk, folded=folded, chunk_masks=masks[:, :1])
                self._use_folded(folded)
                return
        else:
            positions = torch.arange(start, total, device=input_ids.device)
            per_token = masks[:, positions // self.config.chunk_size - first_chunk]
            blocks = [per_token[:, :, b] for b in range(self.n_blocks)]
        for layer in self.lora_layers.values():
            layer.mask = blocks[layer.block_index]

    @torch.no_grad()
    def routing_decisions(self, all_ids: torch.Tensor) -> torch.Tensor:
        """The mask every position of `all_ids` gets when the whole sequence is routed at once.

        Comparing it with the masks used while decoding with a KV cache counts the cached
        entries a routing change would have invalidated (zero for chunk-sticky routing).
        """
        masks = self.block_masks(all_ids, 0)
        positions = torch.arange(all_ids.shape[1], device=all_ids.device)
        return masks[:, positions // self.config.chunk_size]

    def _use_folded(self, folded: dict[str, torch.Tensor]) -> None:
        """Decode with the chunk's mask folded into V: no per-token masking op at all."""
        for name, layer in self.lora_layers.items():
            layer.folded_v = folded[name]
            layer.mask = None
