"""V1: PT1 head-group gates + a k-hot mask over each block's rank components, per chunk.

What is routed: per `chunk_size` chunk, (a) a k-hot mask over the r rank components of every
block's LoRA layers and (b) PT1's head-group attention gates, one per (layer, head group), in
(0, 2): each group's slice of the merged head outputs is scaled before the attention output
projection (`engine.variants.head_groups`). One small predictor (pooled d_model features ->
hidden -> n_blocks·r mask logits + n_layers·head_groups gate logits) decides both; the gate
logits start at zero (gates exactly 1), so at init V1 is the static LoRA with a fixed mask.

From what (`engine.variants.prompt_routing`): a chunk holding prompt tokens is routed at
prefill from the prompt itself (the mean embedding of the prompt up to the chunk's end); a
chunk after the prompt from the mean embedding of the chunk before it. Features are
RMS-normalised (parameter-free) so the content, not the predictor's bias, moves the scores.

Why chunk-sticky: a chunk's routing depends only on the prompt (known before any K/V exists)
or on earlier chunks, so tokens already in the KV cache never see their routing change after
the fact, and cached generation stays exact. A full forward must be told where each row's
prompt ends (`prompt_lengths`), as training does, to route like prefill + decoding.

Why a straight-through estimator: top-k is not differentiable; the forward uses the hard
k-hot mask (same GEMM shapes as the baseline, only an elementwise product added) while the
backward flows through sigmoid(scores / temperature).

Decoding: the chunk's mask is folded into V once (x·(V diag m) = (x·V) ⊙ m) and its gates are
kept per layer, so a decode step adds one elementwise product per layer (the gates) and no
routing work; the prefill's routing is timed on its own (`routing_cache["pregen_ms"]`).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from engine.variants.base import AdapterModel
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.head_groups import (
    attention_output_projections,
    channel_groups,
    in_channels,
    n_heads,
)
from engine.variants.prompt_routing import chunk_pools, prompt_lengths_of, rms_normalised

PREGEN_KEY = "pregen_ms"


def k_hot_ste(scores: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """Hard top-k mask in the forward pass, sigmoid surrogate gradient in the backward."""
    top = scores.topk(k, dim=-1).indices
    hard = torch.zeros_like(scores).scatter_(-1, top, 1.0)
    soft = torch.sigmoid(scores / temperature)
    return hard + (soft - soft.detach())  # exact 0/1 forward; (hard + soft) - soft rounds


def chunk_features(
    embeddings: torch.Tensor, chunk_size: int, prompt_lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, T, d) -> (B, n_chunks, d) routing features, before normalisation.

    Prompt chunks (starting before the row's prompt ends): the mean embedding of the prompt
    up to the chunk's end. Other chunks: the mean embedding of the chunk before (zero for
    chunk 0, so with no prompt chunk 0 is routed by the predictor's bias alone).
    """
    pools = chunk_pools(embeddings, chunk_size, prompt_lengths)
    prompt = pools.is_prompt_chunk[..., None]
    return torch.where(prompt, pools.prompt_through, pools.previous)


class DynamicRankModel(AdapterModel):
    config: DynamicRankConfig
    routes = True  # per-position masks (`routing_decisions`)
    routing_unit = "mask"  # what the dynamics report counts (engine.evaluation.dynamics)
    has_variant_statistics = True  # gate movement

    def __init__(self, base_model: nn.Module, config: DynamicRankConfig) -> None:
        super().__init__(base_model, config)
        embeddings = base_model.get_input_embeddings()
        dim, dtype = embeddings.embedding_dim, embeddings.weight.dtype
        projections = attention_output_projections(base_model, config.variant)
        heads = n_heads(base_model, config.variant)
        if heads % config.head_groups:
            raise ValueError(
                f"bem_config.head_groups {config.head_groups} must divide the model's "
                f"{heads} attention heads"
            )
        self.n_gate_layers, self.head_groups = len(projections), config.head_groups
        groups = channel_groups(in_channels(projections[0]), heads, config.head_groups)
        self.register_buffer("channel_group", groups, persistent=False)
        self.n_mask_logits = self.n_blocks * config.rank_dimension
        n_gates = self.n_gate_layers * config.head_groups
        self.predictor = nn.Sequential(
            nn.Linear(dim, config.predictor_hidden, dtype=dtype),
            nn.GELU(),
            nn.Linear(config.predictor_hidden, self.n_mask_logits + n_gates, dtype=dtype),
        )
        with torch.no_grad():  # gate logits 0 at init: every gate exactly 1
            self.predictor[2].weight[self.n_mask_logits :].zero_()
            self.predictor[2].bias[self.n_mask_logits :].zero_()
        self._gate_scales: tuple[torch.Tensor, ...] | None = None  # per layer (B, T or 1, C)
        self.last_masks: torch.Tensor | None = None  # (B, n_chunks, n_blocks, r) for inspection
        self.last_gates: torch.Tensor | None = None  # (B, n_chunks, n_layers, head_groups)
        self._hooks = [
            module.register_forward_pre_hook(self._gate_hook(slot))
            for slot, module in enumerate(projections)
        ]

    def _gate_hook(self, slot: int):
        def hook(module: nn.Module, args: tuple):
            if self._gate_scales is None:  # base model called directly: no gating
                return None
            return (args[0] * self._gate_scales[slot], *args[1:])

        return hook

    # ------------------------------------------------------------------ routing

    def routing(
        self, all_ids: torch.Tensor, first_chunk: int, prompt_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks (B, n, n_blocks, r) and gates (B, n, n_layers, head_groups) of chunks
        `first_chunk`.. of `all_ids`.

        Only the chunks the current forward touches are computed (one chunk per decoded
        token), and a generated chunk only reads the chunk before it, which keeps cached
        generation O(chunk) per token; a prompt chunk reads the prompt from position 0.
        """
        cfg = self.config
        cs = cfg.chunk_size
        reads_prompt = bool((first_chunk * cs < prompt_lengths).any())
        lo = 0 if reads_prompt else max(0, (first_chunk - 1) * cs)
        with torch.no_grad():
            embeddings = self.base_model.get_input_embeddings()(all_ids[:, lo:])
        feats = chunk_features(embeddings, cs, prompt_lengths if reads_prompt else None)
        feats = rms_normalised(feats[:, first_chunk - lo // cs :])
        out = self.predictor(feats)
        scores = out[..., : self.n_mask_logits].unflatten(-1, (self.n_blocks, cfg.rank_dimension))
        gates = 2.0 * torch.sigmoid(out[..., self.n_mask_logits :])
        gates = gates.unflatten(-1, (self.n_gate_layers, self.head_groups))
        if not torch.is_grad_enabled():
            top = scores.topk(cfg.k_active, dim=-1).indices
            return torch.zeros_like(scores).scatter_(-1, top, 1.0), gates
        return k_hot_ste(scores, cfg.k_active, cfg.temperature), gates

    def block_masks(
        self,
        all_ids: torch.Tensor,
        first_chunk: int = 0,
        prompt_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masks of chunks `first_chunk`.. of `all_ids`: (B, n_chunks - first_chunk, blocks, r)."""
        prompt = prompt_lengths_of(prompt_lengths, all_ids.shape[0], all_ids.device)
        return self.routing(all_ids, first_chunk, prompt)[0]

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
        prompt_lengths: torch.Tensor | None = None,
    ) -> None:
        cs = self.config.chunk_size
        batch, length = input_ids.shape
        start = 0 if context_ids is None else context_ids.shape[1]
        total = start + length
        first_chunk, last_chunk = start // cs, (total - 1) // cs
        single_chunk = last_chunk == first_chunk
        trace = routing_cache.get("trace") if routing_cache is not None else None
        if routing_cache is not None and single_chunk and routing_cache.get("chunk") == first_chunk:
            self._use_folded(routing_cache["folded"])  # decode step in an already-routed chunk
            self._gate_scales = routing_cache["gate_scales"]
            if trace is not None:
                trace.append(routing_cache["chunk_masks"].expand(1, length, -1, -1))
            return
        prompt = prompt_lengths_of(prompt_lengths, batch, input_ids.device, routing_cache)
        pregen = routing_cache is not None and bool((first_chunk * cs < prompt).any())
        started = time.perf_counter()
        all_ids = input_ids if context_ids is None else torch.cat([context_ids, input_ids], 1)
        masks, gates = self.routing(all_ids, first_chunk, prompt)
        self.last_masks, self.last_gates = masks.detach(), gates.detach()
        positions = torch.arange(start, total, device=input_ids.device) // cs - first_chunk
        if trace is not None:
            trace.append(masks[:, positions].detach())
        channel_gates = gates[..., self.channel_group]  # (B, n, n_layers, C)
        cacheable = routing_cache is not None and not torch.is_grad_enabled() and batch == 1
        if cacheable:  # the last chunk's routing, folded, for the decode steps that follow
            routing_cache.update(
                chunk=last_chunk,
                folded=self._folded(masks[:, -1]),
                chunk_masks=masks[:, -1:],
                gate_scales=channel_gates[:, -1:].unbind(2),
            )
        if single_chunk and cacheable:
            self._use_folded(routing_cache["folded"])
            self._gate_scales = routing_cache["gate_scales"]
        else:
            if single_chunk:  # every current token sits in one chunk: (B, 1, ·) broadcasts
                per_token, scales = masks[:, :1], channel_gates[:, :1]
            else:
                per_token, scales = masks[:, positions], channel_gates[:, positions]
            for layer in self.lora_layers.values():
                layer.mask = per_token[:, :, layer.block_index]
            self._gate_scales = scales.unbind(2)
        if pregen:
            elapsed = 1e3 * (time.perf_counter() - started)
            routing_cache[PREGEN_KEY] = routing_cache.get(PREGEN_KEY, 0.0) + elapsed

    def _folded(self, chunk_masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's lora_v with one chunk's mask (1, blocks, r) multiplied in."""
        return {
            name: layer.lora_v * chunk_masks[0, layer.block_index]
            for name, layer in self.lora_layers.items()
        }

    def release(self) -> None:
        super().release()
        self._gate_scales = None

    @torch.no_grad()
    def routing_decisions(
        self, all_ids: torch.Tensor, prompt_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mask every position of `all_ids` gets when the whole sequence is routed at once.

        Comparing it with the masks used while decoding with a KV cache counts the cached
        entries a routing change would have invalidated (zero for chunk-sticky routing).
        """
        masks = self.block_masks(all_ids, 0, prompt_lengths)
        positions = torch.arange(all_ids.shape[1], device=all_ids.device)
        return masks[:, positions // self.config.chunk_size]

    @torch.no_grad()
    def routing_gates(
        self, all_ids: torch.Tensor, prompt_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, n_layers, head_groups): the head-group gates every position gets."""
        prompt = prompt_lengths_of(prompt_lengths, all_ids.shape[0], all_ids.device)
        gates = self.routing(all_ids, 0, prompt)[1]
        positions = torch.arange(all_ids.shape[1], device=all_ids.device)
        return gates[:, positions // self.config.chunk_size]

    def _use_folded(self, folded: dict[str, torch.Tensor]) -> None:
        """Decode with the chunk's mask folded into V: no per-token masking op at all."""
        for name, layer in self.lora_layers.items():
            layer.folded_v = folded[name]
            layer.mask = None

    def variant_statistics(
        self, tokenizer, task, examples, predictions, device, *, sequences=None, **settings
    ) -> dict:
        """How far the head-group gates moved from identity over the evaluated sequences
        (their routing dynamics are added by the runner, `engine.evaluation.dynamics`)."""
        from engine.evaluation.dynamics import gate_movement

        gates = [torch.empty(0, self.n_gate_layers, self.head_groups)]
        for ids, prompt_length in sequences or []:
            x = torch.tensor([list(ids)], device=device)
            gates.append(self.routing_gates(x, torch.tensor([prompt_length]))[0].cpu())
        return {"gate_movement": {**gate_movement(torch.cat(gates)), "unit": "tokens"}}
