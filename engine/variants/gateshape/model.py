"""V2: PT1 + gate shaping. Re-ranked evidence sets per-head-group attention gates, once per prompt.

At the newline that ends the question (see `layout`), the re-ranker scores the prompt's
passages against the question; the scores' margin and entropy set one gate per (layer, head
group) (`gates`), and from that position on each group's slice of the merged head outputs is
scaled by its gate before the attention output projection (a forward pre-hook on `attn.c_proj`,
so the static LoRA on c_proj sees the gated input like the frozen weight does).

Why gate only from the question's end on: the gates depend on the whole question, so applying
them to earlier positions would let a token's computation depend on tokens after it. Gating
positions >= the question's end keeps the model causal, which is what makes a full forward in
training (prompt and answer in one sequence) and prefill + cached decoding in generation compute
the same thing, and lets prompt tokens already in the KV cache keep their values.

Why it costs nothing per generated token: the re-ranking and gate computation happen once, in
the forward where the question line completes (the prefill, for a retrieval prompt), and the
per-channel gates go into `routing_cache`; decode steps only multiply the head outputs by them.
The time of that pre-generation phase is recorded in `routing_cache["pregen_ms"]`.

Rows whose prompt does not have the expected layout are not gated, so on other prompt shapes
the variant is exactly its static-LoRA baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from bemctl.errors import BemctlError
from engine.variants.base import AdapterModel, LoraLayer
from engine.variants.gateshape.config import GateShapingConfig
from engine.variants.gateshape.gates import HeadGroupGates, channel_groups
from engine.variants.gateshape.layout import find_layout
from engine.variants.gateshape.loss import margin_alignment_loss
from engine.variants.gateshape.reranker import PassageReranker, ranking_features

CACHE_KEY = "gate_shaping"
PREGEN_KEY = "pregen_ms"
_OUTPUT_PROJECTIONS = ("attn.c_proj", "self_attn.o_proj")  # GPT-2, Llama-style


@dataclass
class SequenceRouting:
    """One sequence's gating, kept in `routing_cache` across its decode steps."""

    length: int  # tokens covered so far (context + current input)
    decided: torch.Tensor  # (B,) bool: the row's question line is complete
    question_end: torch.Tensor  # (B,) long: first gated position (layout.UNDECIDED if none)
    channel_gates: torch.Tensor  # (B, n_layers, channels): per-channel gate, 1 = not gated
    settled: bool  # every row decided: later steps only apply `decode_scales`
    decode_scales: tuple[torch.Tensor, ...]  # per layer (B, 1, channels): views of the above


def attention_output_projections(model: nn.Module) -> list[nn.Module]:
    """The modules that take the merged head outputs, in block order."""
    found = [m for name, m in model.named_modules() if name.endswith(_OUTPUT_PROJECTIONS)]
    if not found:
        raise BemctlError(
            f"pt1_gate_shaping: {type(model).__name__} has no attention output projection "
            f"(looked for modules named *{' or *'.join(_OUTPUT_PROJECTIONS)})"
        )
    return found


def _in_channels(module: nn.Module) -> int:
    if isinstance(module, LoraLayer):
        return module.in_features
    if isinstance(module, nn.Linear):
        return module.in_features
    return int(module.weight.shape[0])  # GPT-2 Conv1D stores W as (in, out)


def _n_heads(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    heads = getattr(config, "n_head", None) or getattr(config, "num_attention_heads", None)
    if not heads:
        raise BemctlError(f"pt1_gate_shaping: cannot tell the head count of {type(model).__name__}")
    return int(heads)


class GateShapingModel(AdapterModel):
    config: GateShapingConfig

    def __init__(self, base_model: nn.Module, config: GateShapingConfig) -> None:
        super().__init__(base_model, config)
        embeddings = base_model.get_input_embeddings()
        if config.newline_token_id >= embeddings.num_embeddings:
            raise BemctlError(
                f"bem_config.newline_token_id {config.newline_token_id} is outside the "
                f"model's vocabulary ({embeddings.num_embeddings} ids)"
            )
        projections = attention_output_projections(base_model)
        n_heads = _n_heads(base_model)
        if config.head_groups > n_heads:
            raise BemctlError(
                f"bem_config.head_groups {config.head_groups} exceeds the model's "
                f"{n_heads} attention heads"
            )
        groups = channel_groups(_in_channels(projections[0]), n_heads, config.head_groups)
        self.register_buffer("channel_group", groups, persistent=False)
        dtype = embeddings.weight.dtype
        self.reranker = PassageReranker(embeddings.embedding_dim, config.ranker_dim, dtype)
        self.gates = HeadGroupGates(len(projections), config.head_groups, 2, dtype)
        self._scales: tuple[torch.Tensor, ...] | None = None  # per layer (B, T or 1, C)
        self._ranked: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._relevant: list[int | None] | None = None
        self.last_scores: torch.Tensor | None = None  # (rows, K), for inspection
        self.last_gates: torch.Tensor | None = None  # (rows, n_layers, head_groups)
        self._hooks = [
            module.register_forward_pre_hook(self._gate_hook(slot))
            for slot, module in enumerate(projections)
        ]

    def _gate_hook(self, slot: int):
        def hook(module: nn.Module, args: tuple):
            if self._scales is None:  # base model called directly: no gating
                return None
            return (args[0] * self._scales[slot], *args[1:])

        return hook

    # ------------------------------------------------------------------ routing

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
    ) -> None:
        self._ranked = None
        start = 0 if context_ids is None else context_ids.shape[1]
        state = routing_cache.get(CACHE_KEY) if routing_cache is not None else None
        fast = (
            isinstance(state, SequenceRouting)
            and state.length == start
            and state.decided.shape[0] == input_ids.shape[0]
        )
        if fast and state.settled:  # decode step: apply the cached gates, nothing else
            self._scales = state.decode_scales
            state.length += input_ids.shape[1]
            return
        if not fast or self._may_complete(state, input_ids):
            started = time.perf_counter()
            state = self._route(input_ids, context_ids, state if fast else None)
            if routing_cache is not None:
                elapsed = 1e3 * (time.perf_counter() - started)
                routing_cache[PREGEN_KEY] = routing_cache.get(PREGEN_KEY, 0.0) + elapsed
        positions = torch.arange(start, start + input_ids.shape[1], device=input_ids.device)
        active = (positions[None, :] >= state.question_end[:, None]).to(state.channel_gates.dtype)
        # 1 + active·(gate - 1): the gate from the question's end on, 1 before (one fused pass
        # over (B, n_layers, T, C) is cheaper than torch.where's broadcast)
        deviation = (state.channel_gates - 1.0)[:, :, None, :]
        self._scales = (deviation * active[:, None, :, None] + 1.0).unbind(1)
        state.length = start + input_ids.shape[1]
        if routing_cache is not None:
            routing_cache[CACHE_KEY] = state

    def _may_complete(self, state: SequenceRouting, input_ids: torch.Tensor) -> bool:
        """Can this input complete an undecided row's question line (does it hold a newline)?"""
        return bool((input_ids[~state.decided] == self.config.newline_token_id).any())

    def _route(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        state: SequenceRouting | None,
    ) -> SequenceRouting:
        """Find the layout of every row; re-rank and gate the rows that just became valid."""
        cfg = self.config
        all_ids = input_ids if context_ids is None else torch.cat([context_ids, input_ids], 1)
        layout = find_layout(all_ids, cfg.newline_token_id, cfg.n_passages)
        channel_gates = None if state is None else state.channel_gates
        new = layout.valid if state is None else layout.valid & ~state.decided
        rows = new.nonzero()[:, 0]
        if len(rows):
            everyone = len(rows) == all_ids.shape[0]  # the usual case: skip the row gathers
            span = int(layout.question_end[rows].max()) + 1  # nothing after the question
            ids, line = all_ids[:, :span], layout.line[:, :span]
            if not everyone:
                ids, line = ids[rows], line[rows]
            with torch.no_grad():
                embedded = self.base_model.get_input_embeddings()(ids)
            scores = self.reranker(embedded, line, cfg.n_passages)
            row_gates = self.gates(ranking_features(scores))
            self._ranked = (rows, scores, row_gates)
            self.last_scores, self.last_gates = scores.detach(), row_gates.detach()
            row_channels = row_gates[:, :, self.channel_group]
            if everyone:
                channel_gates = row_channels
            else:
                if channel_gates is None:
                    channel_gates = self._identity(all_ids.shape[0])
                channel_gates = channel_gates.index_put((rows,), row_channels)
        if channel_gates is None:
            channel_gates = self._identity(all_ids.shape[0])
        return SequenceRouting(
            length=all_ids.shape[1],
            decided=layout.decided,
            question_end=layout.question_end,
            channel_gates=channel_gates,
            settled=bool(layout.decided.all()),
            decode_scales=channel_gates[:, :, None, :].unbind(1),
        )

    def _identity(self, batch: int) -> torch.Tensor:
        """(B, n_layers, C) channel gates of rows that are not gated."""
        shape = (batch, self.gates.bias.shape[0], len(self.channel_group))
        return torch.ones(shape, dtype=self.gates.bias.dtype, device=self.channel_group.device)

    def release(self) -> None:
        super().release()
        self._scales = None

    # ------------------------------------------------------------------ training hooks

    def set_batch_extras(self, extras: list[dict]) -> None:
        """Each example's relevant passage (task features); refuses a mismatched passage count,
        which would otherwise train the re-ranker against the wrong lines."""
        k = self.config.n_passages
        relevant: list[int | None] = []
        for item in extras:
            n = item.get("n_passages")
            if n is not None and n != k:
                raise BemctlError(
                    f"the task has {n} passages per prompt but bem_config.n_passages is {k}"
                )
            index = item.get("relevant_passage")
            if index is not None and not 0 <= int(index) < k:
                raise BemctlError(f"relevant_passage {index} out of range for {k} passages")
            relevant.append(None if index is None else int(index))
        self._relevant = relevant

    @property
    def curve_quantity(self) -> str | None:
        """What the step rows measure (run.curve_quantity): the loss trained, with the
        auxiliary term, unless its weight is 0 (then it is the plain language-model loss)."""
        w = self.config.margin_loss_weight
        return f"LM loss + {w:g} × re-ranking/margin loss" if w else None

    def auxiliary_loss(self) -> torch.Tensor | None:
        """margin_loss_weight · (ranking CE + margin alignment) over the last forward's rows
        that were re-ranked and have a known relevant passage; None when there are none."""
        ranked, relevant = self._ranked, self._relevant
        self._ranked = self._relevant = None
        if ranked is None or relevant is None or self.config.margin_loss_weight == 0:
            return None
        rows, scores, gates = ranked
        if int(rows.max()) >= len(relevant):
            raise ValueError(f"batch extras cover {len(relevant)} rows, the batch has more")
        keep = [i for i, row in enumerate(rows.tolist()) if relevant[row] is not None]
        if not keep:
            return None
        targets = torch.tensor([relevant[int(rows[i])] for i in keep], device=scores.device)
        loss = margin_alignment_loss(scores[keep], gates[keep], targets)
        return self.config.margin_loss_weight * loss
