"""The router's adapter model: K expert LoRAs per layer, one macro-action per chunk.

Why the experts live in one rank-(K·r) LoRA per layer: expert k owns columns
[k·r, (k+1)·r) of `lora_v` / `lora_u`, and an action (expert e, rank budget b, bias scale s)
is a per-token mask over those K·r columns (the first ceil(b·r) of expert e set to s, all
others 0). Routing is then exactly the masked-LoRA hot path V1 uses (`triton_ops.masked_lora`,
fused on a GPU), the static multi-task baseline of rank K·r has the same GEMM shapes, and
the composed ΔW of a chunk is the masked product whose norm the trust region bounds.

Causality and stickiness: the action of chunk c is decided at its start, from a chunk
feature, an evidence feature and the previous action; it is never revised inside the chunk.
A chunk holding prompt tokens is decided at prefill from the prompt itself
(`engine.variants.prompt_routing`): chunk feature = the mean embedding of its own prompt
tokens, evidence = the mean of the prompt up to its end, so the first chunk is routed from
the prompt's content (the instruction line, the context) instead of blind. A chunk after the
prompt is decided causally: the mean embeddings of chunk c-1 and of everything before chunk c.
With a KV cache the plan decided so far is kept in the caller's `routing_cache`, so a decode
step inside a chunk reuses its action and cached K/V of earlier chunks stay what a full pass
(told where the prompt ends, `prompt_lengths`) computes. The prefill's planning is timed on
its own (`routing_cache["pregen_ms"]`, the pre-generation phase).

Trust region: per adapted layer and action, ‖ΔW‖_F of the masked composition is computed
from the factors (`engine.router.composition.frobenius_norm`) and the action's mask is
scaled by min(1, tau/‖ΔW‖_F): direction kept, norm bounded; projections are counted.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import torch
from torch import nn

from engine.router.actions import Action, ActionSpace, active_rank
from engine.router.composition import ProjectionStats, frobenius_norm
from engine.router.hysteresis import expert_margin_gain
from engine.router.plan import SequencePlan, plan_sequence
from engine.router.policy import MacroPolicy, ValueNetwork
from engine.variants.base import AdapterModel
from engine.variants.prompt_routing import chunk_pools, prompt_lengths_of
from engine.variants.router.config import RouterConfig


def pooled_chunks(
    embeddings: torch.Tensor, chunk_size: int, prompt_lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, d) -> per chunk c: its chunk features and its evidence features (B, n, d) each.

    Prompt chunks (starting before the row's prompt ends): the mean of the chunk's own prompt
    tokens and the mean of the prompt up to the chunk's end, i.e. the prompt, known at
    prefill. Other chunks: the mean of chunk c-1 and of everything before chunk c, so a
    decision never sees its own generated tokens (both zero for chunk 0 without a prompt).
    """
    pools = chunk_pools(embeddings, chunk_size, prompt_lengths)
    prompt = pools.is_prompt_chunk[..., None]
    previous = torch.where(prompt, pools.prompt_own, pools.previous)
    evidence = torch.where(prompt, pools.prompt_through, pools.before)
    return previous, evidence


PREGEN_KEY = "pregen_ms"


class DecisionRecord(NamedTuple):
    """One policy call while planning: where, on what state, what it proposed, how likely."""

    chunk: int
    state: torch.Tensor  # (state_dim,)
    indices: torch.Tensor  # (4,) proposed head indices (before hysteresis)
    log_prob: float  # joint log-probability of `indices` under the policy that proposed them


class RouterModel(AdapterModel):
    config: RouterConfig
    routes = True  # per-position actions (`routing_decisions`)
    routing_unit = "action"  # what the dynamics report counts (engine.evaluation.dynamics)
    has_own_training = True  # staged: experts, oracle, BC (AR0); policy gradient (AR1)
    has_variant_statistics = True  # the router gates' measurements

    def __init__(self, base_model: nn.Module, config: RouterConfig) -> None:
        k, r = config.n_experts, config.rank_dimension
        # one rank-(K·r) LoRA per layer with the experts' scaling alpha / r
        geometry = config.model_copy(
            update={"rank_dimension": k * r, "lora_alpha": config.lora_alpha * k}
        )
        super().__init__(base_model, geometry)
        self.config = config
        self.space = ActionSpace(n_experts=k)
        self._orthogonal_experts()
        dim = base_model.get_input_embeddings().embedding_dim
        self.state_dim = 2 * dim + self.space.one_hot_dim
        self.policy = MacroPolicy(self.space, self.state_dim, config.policy_hidden)
        self.value = ValueNetwork(self.state_dim, config.policy_hidden)
        self.projections = ProjectionStats()
        self.forced_plans: list[list[Action]] | None = None  # oracle actions while training
        self.last_plans: list[SequencePlan] = []

    # -- experts ------------------------------------------------------------------------
    def _orthogonal_experts(self) -> None:
        """Experts start in mutually orthogonal input subspaces (V columns orthonormal
        across experts, rescaled to the usual init's norm); U starts at zero as in LoRA."""
        with torch.no_grad():
            for layer in self.lora_layers.values():
                v = layer.lora_v
                q, _ = torch.linalg.qr(torch.randn(v.shape[0], v.shape[1], dtype=torch.float64))
                q = q.to(v.dtype) * (v.norm() / math.sqrt(v.shape[1]))
                v.copy_(q)

    def expert_columns(self, expert: int) -> slice:
        r = self.config.rank_dimension
        return slice(expert * r, (expert + 1) * r)

    def expert_overlap(self) -> torch.Tensor:
        """(K, K) mean over layers of ‖Q_iᵀ Q_j‖_F² / r for orthonormal bases Q of the experts'
        ΔW column spaces (U, or V while U is zero): 1 on the diagonal, 0 = orthogonal."""
        k, r = self.config.n_experts, self.config.rank_dimension
        total = torch.zeros(k, k, dtype=torch.float64)
        with torch.no_grad():
            for layer in self.lora_layers.values():
                factor = layer.lora_u if layer.lora_u.abs().sum() > 0 else layer.lora_v
                bases = [
                    torch.linalg.qr(factor[:, self.expert_columns(e)].double())[0] for e in range(k)
                ]
                for i in range(k):
                    for j in range(k):
                        total[i, j] += (bases[i].t() @ bases[j]).pow(2).sum() / r
        return total / len(self.lora_layers)

    def train_arm(self, tokenizer, task, train, plan, device, on_step=None, log=None) -> float:
        """The runner's training entry for this arm: AR0 = experts, oracle traces, BC;
        AR1 = policy-gradient rounds from the AR0 state the runner loaded first."""
        from engine.variants.router.arm import train_pg_arm, train_router_arm

        stage = train_pg_arm if self.config.warm_starts_from_baseline else train_router_arm
        return stage(self, tokenizer, task, train, plan, device, on_step, log)

    @property
    def curve_quantity(self) -> str:
        """What this arm's step rows measure (run.curve_quantity; reports plot each quantity
        on its own axis): AR1 logs a row per policy-gradient round, AR0's expert stage the
        language-model loss plus the orthogonality penalty."""
        if self.config.warm_starts_from_baseline:
            return "policy objective (−mean reward)"
        return f"LM loss + {self.config.orthogonality_weight:g} × expert orthogonality penalty"

    def training_steps(self, plan) -> int:
        """Step rows this arm's training writes (AR1: one per round)."""
        from engine.variants.router.arm import pg_rounds

        if self.config.warm_starts_from_baseline:
            return pg_rounds(self.config, plan)
        return plan.steps

    # -- routing ------------------------------------------------------------------------
    def chunk_states(
        self, all_ids: torch.Tensor, prompt_lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Chunk and evidence features (B, n_chunks, d) each, from frozen embeddings;
        `prompt_lengths` (B,): where each row's prompt ends (None: no prompt, all causal)."""
        with torch.no_grad():
            embeddings = self.base_model.get_input_embeddings()(all_ids)
        prompt = prompt_lengths_of(prompt_lengths, all_ids.shape[0], all_ids.device)
        return pooled_chunks(embeddings, self.config.chunk_size, prompt)

    def state(
        self, previous: torch.Tensor, evidence: torch.Tensor, prev_action: Action | None
    ) -> torch.Tensor:
        """(1, state_dim): [chunk c-1 features, evidence up to c, previous action one-hot]."""
        one_hot = self.space.one_hot(prev_action).to(previous)
        return torch.cat([previous, evidence, one_hot])[None]

    @torch.no_grad()
    def plan(
        self,
        previous: torch.Tensor,
        evidence: torch.Tensor,
        generator: torch.Generator | None = None,
        record: list[DecisionRecord] | None = None,
    ) -> SequencePlan:
        """One sequence's plan from its features (n_chunks, d): greedy policy, hysteresis on
        the expert-probability margin, at most `max_plan_length` actions.

        With a `generator` the proposals are sampled from the policy instead (AR1's rollouts;
        seeded, so a rollout is reproducible). `record` receives one `DecisionRecord` per
        call of the policy: the state it saw, the proposed head indices and their
        log-probability, which is what a policy-gradient update needs (the hysteresis veto
        is the environment's, not the policy's) and what oracle states are checked against.
        """
        cfg = self.config
        probs: dict[int, torch.Tensor] = {}

        def decide(chunk: int, prev: Action | None) -> Action:
            state = self.state(previous[chunk], evidence[chunk], prev)
            dist = self.policy(state)
            probs[chunk] = dist.probs(0)[0]
            indices = dist.mode() if generator is None else dist.sample(generator)
            if record is not None:
                log_prob = float(dist.log_prob(indices)[0])
                record.append(DecisionRecord(chunk, state[0].clone(), indices[0].clone(), log_prob))
            return self.space.from_indices(indices[0].tolist())

        def gain(chunk: int, prev: Action, proposed: Action) -> float:
            return expert_margin_gain(probs[chunk], prev, proposed)

        return plan_sequence(
            previous.shape[0],
            decide,
            max_actions=cfg.max_plan_length,
            gain=gain,
            switch_cost=cfg.switch_cost,
            tau=cfg.hysteresis_tau,
        )

    def action_mask(self, action: Action, layer_name: str) -> torch.Tensor:
        """(K·r,) mask of one action on one layer, trust-region scale included.

        With gradients disabled (inference) a mask is computed once per (layer, setting) for
        the layer's current weights and reused by later prompts and decode steps (`_layer_cache`:
        the weights' version counters key it, so an optimiser step or a loaded state dict
        starts it afresh); with gradients enabled (training) it is computed on every call, in
        the graph, as before. `self.projections` therefore records one check per *computed*
        mask: during inference that is per (layer, setting, weights), not per sequence or
        forward that applies it (the gate's projection counts come from
        `engine.variants.router.gate_measures`, not from this counter).
        """
        cache = self._layer_cache(layer_name)
        setting = ("mask", action.expert, action.rank_budget, action.bias_scale)
        if cache is not None and setting in cache:
            return cache[setting]
        mask = self._compute_action_mask(action, layer_name)
        if cache is not None:
            cache[setting] = mask
        return mask

    def _compute_action_mask(self, action: Action, layer_name: str) -> torch.Tensor:
        """`action_mask` without the inference cache (the trust-region computation itself)."""
        layer = self.lora_layers[layer_name]
        start = self.expert_columns(action.expert).start
        bias = self.space.bias_value(action)
        u, v = self.action_factors(action, layer_name)
        keep = u.shape[1]
        norm = frobenius_norm([u], [v])
        tau = self.config.trust_region_tau
        projected = bool(norm.detach() > tau)
        # inside the region the scale is the constant 1, outside the graph: ‖ΔW‖ = sqrt(.)
        # has an infinite derivative at 0 (U starts at zero), and a clamped tau/‖ΔW‖ would
        # send 0 * inf = NaN into the experts' gradients on the first training step
        scale = tau / norm if projected else torch.ones((), dtype=norm.dtype, device=norm.device)
        self.projections.record(float(norm.detach()), projected=projected)
        mask = torch.zeros(layer.lora_v.shape[1], dtype=layer.lora_v.dtype)
        mask = mask.to(layer.lora_v.device)
        values = torch.full((keep,), bias, dtype=mask.dtype, device=mask.device) * scale
        return torch.cat([mask[:start], values, mask[start + keep :]])

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
        prompt_lengths: torch.Tensor | None = None,
    ) -> None:
        cs = self.config.chunk_size
        start = 0 if context_ids is None else context_ids.shape[1]
        total = start + input_ids.shape[1]
        all_ids = input_ids if context_ids is None else torch.cat([context_ids, input_ids], 1)
        n_chunks = math.ceil(total / cs)
        # the first forward of a sequence plans its prompt chunks: the pre-generation phase
        pregen = routing_cache is not None and "plans" not in routing_cache
        started = time.perf_counter()
        prompt = prompt_lengths_of(prompt_lengths, all_ids.shape[0], all_ids.device, routing_cache)
        plans = self._plans(all_ids, n_chunks, routing_cache, prompt)
        if pregen and self.forced_plans is None:
            elapsed = 1e3 * (time.perf_counter() - started)
            routing_cache[PREGEN_KEY] = routing_cache.get(PREGEN_KEY, 0.0) + elapsed
        trace = routing_cache.get("trace") if routing_cache is not None else None
        single_chunk = input_ids.shape[0] == 1 and (start // cs) == (total - 1) // cs
        fold = routing_cache is not None and single_chunk and not torch.is_grad_enabled()
        # a decode step needs no per-token positions (unless a KV check records its trace)
        positions = None
        if trace is not None or not fold:
            positions = torch.arange(start, total, device=input_ids.device) // cs
        if trace is not None:
            codes = torch.tensor(
                [[self.space.encode(p[c]) for c in positions.tolist()] for p in plans],
                dtype=torch.long,
            )
            trace.append(codes[..., None])
        if fold:
            # decode steps inside one chunk: fold its action (trust-region scale included)
            # into V once per chunk, x·(V diag m) = (x·V) ⊙ m, so a step adds no op at all;
            # the folded factors themselves are cached across prompts (`_folded_v`)
            action = plans[0][start // cs]
            folded = routing_cache.get("folded")
            if folded is None or folded[0] != action:
                folded = (action, {name: self._folded_v(action, name) for name in self.lora_layers})
                routing_cache["folded"] = folded
            for name, layer in self.lora_layers.items():
                self._set_layer_routing(layer, folded[1][name], None)
            return
        for name, layer in self.lora_layers.items():
            per_action: dict[Action, torch.Tensor] = {}
            rows = []
            for plan in plans:
                chunk_masks = []
                for action in plan[:n_chunks]:
                    if action not in per_action:
                        per_action[action] = self.action_mask(action, name)
                    chunk_masks.append(per_action[action])
                rows.append(torch.stack(chunk_masks)[positions])  # (T, K·r)
            self._set_layer_routing(layer, layer.folded_v, torch.stack(rows))

    def _plans(
        self,
        all_ids: torch.Tensor,
        n_chunks: int,
        routing_cache: dict | None,
        prompt_lengths: torch.Tensor | None = None,
    ) -> list[list[Action]]:
        """Per sequence, the action of every chunk up to `n_chunks` (forced, cached or new)."""
        if self.forced_plans is not None:
            return [list(p[:n_chunks]) + [p[-1]] * (n_chunks - len(p)) for p in self.forced_plans]
        cached = routing_cache.get("plans") if routing_cache is not None else None
        if cached is not None and all(len(p.chunk_actions) >= n_chunks for p in cached):
            return [list(p.chunk_actions) for p in cached]
        previous, evidence = self.chunk_states(all_ids, prompt_lengths)
        plans = [self.plan(previous[b], evidence[b]) for b in range(all_ids.shape[0])]
        if cached is not None:  # keep what was decided already: stickiness across calls
            plans = [self._extend(old, new) for old, new in zip(cached, plans, strict=True)]
        if routing_cache is not None:
            routing_cache["plans"] = plans
        self.last_plans = plans
        return [list(p.chunk_actions) for p in plans]

    @staticmethod
    def _extend(old: SequencePlan, new: SequencePlan) -> SequencePlan:
        """A longer plan must agree with the decisions already applied (causality)."""
        n = len(old.chunk_actions)
        if list(new.chunk_actions[:n]) != list(old.chunk_actions):
            raise RuntimeError("routing of an earlier chunk changed: the plan is not causal")
        return new

    @torch.no_grad()
    def routing_decisions(
        self, all_ids: torch.Tensor, prompt_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each position's action code when the whole sequence is routed at once (KV check)."""
        n_chunks = math.ceil(all_ids.shape[1] / self.config.chunk_size)
        prompt = prompt_lengths_of(prompt_lengths, all_ids.shape[0], all_ids.device)
        plans = self._plans(all_ids, n_chunks, None, prompt)
        positions = torch.arange(all_ids.shape[1]) // self.config.chunk_size
        codes = [[self.space.encode(p[c]) for c in positions.tolist()] for p in plans]
        return torch.tensor(codes, dtype=torch.long)[..., None]

    # -- inference caches (private helpers of the routing methods above) ------------------
    def _layer_cache(self, layer_name: str) -> dict | None:
        """The inference cache of one layer for its current weights; None in training.

        Why: an action's mask (its trust-region scale needs two Gram matrices) and its
        V-folded factor only change with the layer's factors, yet each prompt recomputed them
        (~0.1 ms per layer and action, 16 layers, once at prefill and again for the decode
        fold; caching took bench/router.py's router/baseline p50 from ~1.17 to ~1.08 on the
        embedded model, prefill + 16 tokens). Keyed on both factors' version counters
        (every in-place update bumps them: optimiser steps, `copy_` when a state dict is
        loaded; writes through `.data` would not, and nothing here makes any), their
        storage, dtype, device, tau and scaling; a changed key
        empties the layer's entry, so at most one weight version is held per layer.
        Only while gradients are disabled: training builds masks in the graph every call.
        A FLOP count of a forward with a warm cache (`flops_per_token`) no longer includes
        the masks' Gram matrices (~0.04% of the embedded model's FLOPs per token).
        """
        if torch.is_grad_enabled():
            return None
        layer = self.lora_layers[layer_name]
        u, v = layer.lora_u, layer.lora_v
        key = (
            u._version,
            v._version,
            u.data_ptr(),
            v.data_ptr(),
            u.dtype,
            u.device,
            self.config.trust_region_tau,
            layer.scaling,
        )
        caches = self.__dict__.setdefault("_inference_cache", {})
        entry = caches.get(layer_name)
        if entry is None or entry[0] != key:
            entry = caches[layer_name] = (key, {})
        return entry[1]

    def _folded_v(self, action: Action, layer_name: str) -> torch.Tensor:
        """lora_v with the action's mask multiplied in, V diag m (decode steps; cached)."""
        cache = self._layer_cache(layer_name)
        setting = ("folded", action.expert, action.rank_budget, action.bias_scale)
        if cache is not None and setting in cache:
            return cache[setting]
        folded = self.lora_layers[layer_name].lora_v * self.action_mask(action, layer_name)
        if cache is not None:
            cache[setting] = folded
        return folded

    @staticmethod
    def _set_layer_routing(
        layer: nn.Module, folded_v: torch.Tensor | None, mask: torch.Tensor | None
    ) -> None:
        """Set a LoRA layer's per-forward routing attributes.

        Written to the instance dict directly: nn.Module.__setattr__ checks parameters,
        buffers and submodules first (~6 µs a call, 32 calls per decode step here: a few % of
        a ~2 ms step); these are plain tensor attributes (`LoraLayer.mask`, `.folded_v`), never
        registered, so the result is the same attribute either way.
        """
        state = layer.__dict__
        state["folded_v"] = folded_v
        state["mask"] = mask

    def action_factors(self, action: Action, layer_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, V) of one action's composition on one layer before the trust region: the
        first ceil(b·r) columns of its expert, bias and LoRA scaling folded into U."""
        layer = self.lora_layers[layer_name]
        cols = self.expert_columns(action.expert)
        keep = active_rank(self.config.rank_dimension, self.space.rank_fraction(action))
        bias = self.space.bias_value(action)
        u = layer.lora_u[:, cols][:, :keep] * (bias * layer.scaling)
        return u, layer.lora_v[:, cols][:, :keep]

    def variant_statistics(
        self, tokenizer, task, examples, predictions, device, **settings
    ) -> dict:
        """The router gates' measurements after evaluation (`gate_measures`)."""
        from engine.variants.router.gate_measures import router_statistics

        return router_statistics(self, tokenizer, task, examples, predictions, device, **settings)
