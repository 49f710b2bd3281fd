"""V2: PT1 + gate shaping. Re-ranked evidence shapes per-head-group attention, once per prompt.

At the newline that ends the question (see `layout`), the re-ranker scores the prompt's
passages against the question. Two things follow, per (layer, head group), from that
position on:

- PT1 gates: the scores' margin and entropy set one gate in (0, 2) per (layer, head group)
  (`gates`); each group's slice of the merged head outputs is scaled by its gate before the
  attention output projection (a forward pre-hook on `attn.c_proj`, so the static LoRA on
  c_proj sees the gated input like the frozen weight does).
- Evidence focus: each group's attention logits to a passage's tokens get the bias
  s_(layer, group) · (log p(passage) - log p(top passage)), p = softmax of the re-ranking
  scores (`position_bias` of the sdpa attention, passed by a forward pre-hook on the
  attention module). The top-ranked passage and every token outside the passages keep
  bias 0; with s > 0 a group attends less to the passages the re-ranker ranks low, with s < 0
  more. s = `focus_gain` · focus (config, default 10), focus starting at 0.

Why the focus: on `retrieval_qa` the answer is a value to copy from the one relevant passage
among four, which a scale on a head group's output cannot point at. Measured before it (quick
run, seed 0): gates mean |g - 1| 0.014 (max 0.067) and the variant gave the baseline's answer
on 119 of 120 prompts (0 discordant pairs, EM 0.100 both). The focus acts where the task needs
it: which passage the copying heads read. Why `focus_gain`: focus is a bias scale that has to
travel to O(1) for an effect, and the shared AdamW step (lr ~2e-3, ~lr per step) would take
it ~0.2 in a 100-step quick run; the gain gives it the step size of an O(1) quantity, as a
learning-rate multiplier would. At init (focus 0, gates 1) the variant is exactly its
static-LoRA baseline.

Why shape only from the question's end on: the shaping depends on the whole question, so
applying it to earlier positions would let a token's computation depend on tokens after it.
Shaping queries at positions >= the question's end (whose keys, the passages, all precede
it) keeps the model causal, which is what makes a full forward in training (prompt and answer
in one sequence) and prefill + cached decoding in generation compute the same thing, and lets
prompt tokens already in the KV cache keep their values.

Why it costs little per generated token: the re-ranking, gates and focus bias are computed
once, in the forward where the question line completes (the prefill, for a retrieval prompt),
and go into `routing_cache`; decode steps only multiply the head outputs by the gates and pass
a precomputed slice of the bias to attention. The time of that pre-generation phase is
recorded in `routing_cache["pregen_ms"]`.

Rows whose prompt does not have the expected layout are not shaped, so on other prompt shapes
the variant is exactly its static-LoRA baseline.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch
from torch import nn

from engine.variants.base import AdapterModel
from engine.variants.gateshape.config import GateShapingConfig
from engine.variants.gateshape.gates import HeadGroupGates
from engine.variants.gateshape.layout import find_layout
from engine.variants.gateshape.loss import margin_alignment_loss
from engine.variants.gateshape.measures import shaping_statistics
from engine.variants.gateshape.reranker import PassageReranker, ranking_features
from engine.variants.head_groups import (
    attention_modules,
    attention_output_projections,
    channel_groups,
    in_channels,
    n_heads,
)
from store.errors import BemctlError

CACHE_KEY = "gate_shaping"
PREGEN_KEY = "pregen_ms"


@dataclass
class SequenceRouting:
    """One sequence's gating, kept in `routing_cache` across its decode steps."""

    length: int  # tokens covered so far (context + current input)
    decided: torch.Tensor  # (B,) bool: the row's question line is complete
    question_end: torch.Tensor  # (B,) long: first gated position (layout.UNDECIDED if none)
    channel_gates: torch.Tensor  # (B, n_layers, channels): per-channel gate, 1 = not gated
    settled: bool  # every row decided: later steps only apply `decode_scales`
    decode_scales: tuple[torch.Tensor, ...]  # per layer (B, 1, channels): views of the above
    # (B, W) log p(passage) - log p(top) of each key position's passage (0 elsewhere)
    key_evidence: torch.Tensor
    decode_focus: tuple[torch.Tensor, ...] | None = None  # per layer (B, H, 1, max positions)


class GateShapingModel(AdapterModel):
    config: GateShapingConfig
    has_variant_statistics = True  # gate movement, focus, re-ranker, answers changed

    def __init__(self, base_model: nn.Module, config: GateShapingConfig) -> None:
        super().__init__(base_model, config)
        embeddings = base_model.get_input_embeddings()
        if config.newline_token_id >= embeddings.num_embeddings:
            raise BemctlError(
                f"bem_config.newline_token_id {config.newline_token_id} is outside the "
                f"model's vocabulary ({embeddings.num_embeddings} ids)"
            )
        projections = attention_output_projections(base_model, config.variant)
        attention = attention_modules(base_model, config.variant)
        implementation = getattr(base_model.config, "_attn_implementation", None)
        if implementation != "sdpa":
            raise BemctlError(
                f"pt1_gate_shaping: the evidence focus needs the model's sdpa attention "
                f"(its position_bias); {type(base_model).__name__} uses {implementation!r}"
            )
        heads = n_heads(base_model, config.variant)
        if config.head_groups > heads:
            raise BemctlError(
                f"bem_config.head_groups {config.head_groups} exceeds the model's "
                f"{heads} attention heads"
            )
        groups = channel_groups(in_channels(projections[0]), heads, config.head_groups)
        self.register_buffer("channel_group", groups, persistent=False)
        head_group = torch.arange(heads) * config.head_groups // heads  # as channel_groups
        self.register_buffer("head_group", head_group, persistent=False)
        dtype = embeddings.weight.dtype
        self.reranker = PassageReranker(embeddings.embedding_dim, config.ranker_dim, dtype)
        self.gates = HeadGroupGates(
            len(projections), config.head_groups, 2, dtype, min_temperature=config.min_temperature
        )
        self.focus = nn.Parameter(torch.zeros(len(projections), config.head_groups, dtype=dtype))
        config_of = base_model.config
        self.max_positions = int(
            getattr(config_of, "n_positions", None)
            or getattr(config_of, "max_position_embeddings", None)
            or 0
        )
        self._scales: tuple[torch.Tensor, ...] | None = None  # per layer (B, T or 1, C)
        self._focus: tuple[torch.Tensor, ...] | None = None  # per layer (B, H, Q, K) bias
        self._ranked: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._relevant: list[int | None] | None = None
        self.last_scores: torch.Tensor | None = None  # (rows, K), for inspection
        self.last_gates: torch.Tensor | None = None  # (rows, n_layers, head_groups)
        self.identity_gates = False  # True: gates forced to 1 (what the report compares with)
        self._hooks = [
            module.register_forward_pre_hook(self._gate_hook(slot))
            for slot, module in enumerate(projections)
        ] + [
            module.register_forward_pre_hook(self._focus_hook(slot), with_kwargs=True)
            for slot, module in enumerate(attention)
        ]

    def _gate_hook(self, slot: int):
        def hook(module: nn.Module, args: tuple):
            if self._scales is None:  # base model called directly: no gating
                return None
            return (args[0] * self._scales[slot], *args[1:])

        return hook

    def _focus_hook(self, slot: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict):
            if self._focus is None:  # no shaped row, or the base model called directly
                return None
            return args, {**kwargs, "position_bias": self._focus[slot]}

        return hook

    def focus_strength(self) -> torch.Tensor:
        """(n_layers, head_groups) s of the evidence focus."""
        return self.config.focus_gain * self.focus

    # ------------------------------------------------------------------ routing

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
        prompt_lengths: torch.Tensor | None = None,  # not read: the layout says where it ends
    ) -> None:
        self._ranked = None
        if self.identity_gates:  # the static LoRA this variant would be without its shaping
            self._scales = self._focus = None
            return
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
            self._focus = self._decode_focus(state, input_ids.shape[1])
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
        self._focus = self._focus_bias(state.key_evidence, state.length, active)
        if routing_cache is not None:
            routing_cache[CACHE_KEY] = state

    def _focus_keys(self, key_evidence: torch.Tensor, total: int) -> torch.Tensor | None:
        """(B, n_layers, H, total) attention bias per key position, or None when it is zero
        (no shaped row, or focus 0 outside training: skipping keeps sdpa's fast path)."""
        if key_evidence.shape[1] == 0:
            return None
        if not torch.is_grad_enabled() and not bool(self.focus.any()):
            return None
        evidence = nn.functional.pad(key_evidence, (0, total - key_evidence.shape[1]))
        strength = self.focus_strength()[:, self.head_group]  # (n_layers, H)
        return strength[None, :, :, None] * evidence[:, None, None, :]

    def _focus_bias(
        self, key_evidence: torch.Tensor, total: int, active: torch.Tensor
    ) -> tuple[torch.Tensor, ...] | None:
        """Per layer (B, H, Q, total): the focus bias of the current queries (`active` (B, Q):
        1 from the question's end on) over every key up to `total`."""
        keys = self._focus_keys(key_evidence, total)
        if keys is None:
            return None
        return (keys[:, :, :, None, :] * active[:, None, None, :, None]).unbind(1)

    def _decode_focus(self, state: SequenceRouting, step: int) -> tuple[torch.Tensor, ...] | None:
        """The focus of one decode step: a slice of the bias precomputed once per sequence."""
        if step != 1 or torch.is_grad_enabled() or state.length > self.max_positions:
            active = torch.ones(state.decided.shape[0], step, device=state.key_evidence.device)
            return self._focus_bias(state.key_evidence, state.length, active)
        if state.decode_focus is None:
            keys = self._focus_keys(state.key_evidence, self.max_positions)
            state.decode_focus = () if keys is None else keys[:, :, :, None, :].unbind(1)
        if not state.decode_focus:
            return None
        return tuple(bias[..., : state.length] for bias in state.decode_focus)

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
        batch = all_ids.shape[0]
        key_evidence = (
            state.key_evidence
            if state is not None
            else torch.zeros(batch, 0, dtype=self.focus.dtype, device=all_ids.device)
        )
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
            # each key's passage: log p(passage) - log p(top passage), 0 outside passages
            log_p = scores.log_softmax(-1)
            relative = log_p - log_p.max(-1, keepdim=True).values
            k = cfg.n_passages
            passage = (line >= 0) & (line < k)
            row_evidence = torch.where(passage, relative.gather(1, line.clamp(0, k - 1)), 0.0)
            width = max(key_evidence.shape[1], span)
            key_evidence = nn.functional.pad(key_evidence, (0, width - key_evidence.shape[1]))
            row_evidence = nn.functional.pad(row_evidence, (0, width - span))
            key_evidence = (
                row_evidence if everyone else key_evidence.index_put((rows,), row_evidence)
            )
        if channel_gates is None:
            channel_gates = self._identity(all_ids.shape[0])
        return SequenceRouting(
            length=all_ids.shape[1],
            decided=layout.decided,
            question_end=layout.question_end,
            channel_gates=channel_gates,
            settled=bool(layout.decided.all()),
            decode_scales=channel_gates[:, :, None, :].unbind(1),
            key_evidence=key_evidence,
        )

    def _identity(self, batch: int) -> torch.Tensor:
        """(B, n_layers, C) channel gates of rows that are not gated."""
        shape = (batch, self.gates.bias.shape[0], len(self.channel_group))
        return torch.ones(shape, dtype=self.gates.bias.dtype, device=self.channel_group.device)

    def release(self) -> None:
        super().release()
        self._scales = self._focus = None

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

    # ------------------------------------------------------------------ what the report reads

    @contextlib.contextmanager
    def gates_at_identity(self):
        """Within the block every gate is 1: the variant is exactly its static LoRA part."""
        before, self.identity_gates = self.identity_gates, True
        try:
            yield self
        finally:
            self.identity_gates = before

    @torch.no_grad()
    def prompt_gates(self, ids: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """(gates (n_layers, head_groups), top-ranked passage) of one prompt (1, T); None if
        the prompt lacks the layout (it is not gated)."""
        cfg = self.config
        layout = find_layout(ids, cfg.newline_token_id, cfg.n_passages)
        if not bool(layout.valid[0]):
            return None
        span = int(layout.question_end[0]) + 1
        embedded = self.base_model.get_input_embeddings()(ids[:, :span])
        scores = self.reranker(embedded, layout.line[:, :span], cfg.n_passages)
        return self.gates(ranking_features(scores))[0], int(scores[0].argmax())

    def variant_statistics(
        self,
        tokenizer,
        task,
        examples,
        predictions,
        device,
        *,
        max_new_tokens: int,
        max_length: int,
        **settings,
    ) -> dict:
        """Gate movement and the shaping-off answer check (`gateshape.measures`)."""
        return shaping_statistics(
            self,
            tokenizer,
            task,
            examples,
            predictions,
            device,
            max_new_tokens=max_new_tokens,
            max_length=max_length,
        )
