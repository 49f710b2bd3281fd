"""AR0's teacher: a greedy oracle that scores every expert on each chunk, and BC on its traces.

The oracle walks an example's chunks in order. At chunk c it tries every expert e under the
plan [oracle actions of chunks < c] + [e] and scores e by the mean LM loss of the target
tokens *predicted from positions in chunk c* (see `engine.router.data`): by causality these
are exactly the predictions chunk c's action changes first, and later chunks do not affect
them, so the greedy walk needs no assumption about what comes after. The label is the argmin
(ties -> the lower expert id, `torch.argmin`'s rule). A chunk that predicts no target token
(the context, most of the prompt) scores 0 for every expert, so its label is expert 0; with
the mixed task's domain order that is "qa", the domain of the context, and it means the
router does not switch before the answer (nothing to gain).

States are built exactly as `RouterModel.plan` builds them (`chunk_states` + `state` with the
oracle's previous action), so a policy cloned on them sees at inference what it saw here.
Actions have span 1 and the full-rank / bias-1.0 indices: the oracle only evaluated experts
as trained, and leaving those heads UNDEFINED would let greedy inference pick an arbitrary
rank budget or bias the oracle never scored.

Cost: per batch of examples and per chunk position that predicts some target token, K
forwards over the batch's rows that need it, truncated to the causal prefix ending at that
chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.models.tokenizer import TextTokenizer
from engine.router.actions import Action
from engine.router.bc import BCResult, fit_bc
from engine.router.data import batches, encode_batch, full_action, position_losses
from engine.tasks.base import Task, TaskExample

if TYPE_CHECKING:
    from engine.variants.router.model import RouterModel


@dataclass(frozen=True)
class OracleTraces:
    """One row per (example, chunk): the policy's input and the oracle's action."""

    states: torch.Tensor  # (N, state_dim)
    actions: torch.Tensor  # (N, 4) head indices
    example_index: torch.Tensor  # (N,) index into the examples passed
    chunk: torch.Tensor  # (N,) chunk index within the example
    losses: torch.Tensor  # (N, K) the scores behind each label (0 where nothing is scored)
    scored: torch.Tensor  # (N,) bool: the chunk predicts at least one target token
    plans: list[list[Action]]  # per example, the oracle's action for every chunk


@torch.no_grad()
def oracle_traces(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    device: torch.device,
    max_length: int,
    batch_size: int = 32,
) -> OracleTraces:
    """Greedy per-chunk oracle traces of `examples` (module doc)."""
    if model.evidence_permutation is not None:
        raise ValueError("oracle traces need clean evidence (evidence_permutation is set)")
    model.eval()
    cs, k = model.config.chunk_size, model.config.n_experts
    actions = [full_action(model.space, e) for e in range(k)]
    rows: dict[str, list] = {n: [] for n in ("state", "action", "example", "chunk", "loss")}
    scored_rows: list[bool] = []
    plans: list[list[Action]] = []
    offset = 0
    try:
        for group in batches(examples, batch_size):
            batch = encode_batch(tokenizer, task, group, max_length, device)
            n_chunks = batch.n_chunks(cs)
            scored = batch.scored()  # (B, T-1)
            position_chunk = torch.arange(scored.shape[1], device=scored.device) // cs
            chosen: list[list[Action]] = [[] for _ in group]
            chunk_losses = torch.zeros(len(group), max(n_chunks), k)
            for c in range(max(n_chunks)):
                in_chunk = scored & (position_chunk == c)
                need = [b for b in range(len(group)) if c < n_chunks[b] and bool(in_chunk[b].any())]
                if need:
                    length = min(batch.input_ids.shape[1], (c + 1) * cs + 1)
                    ids = batch.input_ids[need, :length]
                    mask = batch.attention_mask[need, :length]
                    weights = in_chunk[need, : length - 1].float()
                    for e in range(k):
                        model.forced_plans = [chosen[b] + [actions[e]] for b in need]
                        losses = position_losses(model, ids, mask, batch.labels[need])
                        mean = (losses * weights).sum(1) / weights.sum(1)
                        chunk_losses[need, c, e] = mean.cpu()
                for b in range(len(group)):
                    if c < n_chunks[b]:
                        chosen[b].append(actions[int(chunk_losses[b, c].argmin())])
            previous, evidence = model.chunk_states(batch.input_ids)
            for b in range(len(group)):
                prev: Action | None = None
                for c, action in enumerate(chosen[b]):
                    rows["state"].append(model.state(previous[b, c], evidence[b, c], prev)[0])
                    rows["action"].append(model.space.indices(action))
                    rows["example"].append(offset + b)
                    rows["chunk"].append(c)
                    rows["loss"].append(chunk_losses[b, c])
                    scored_rows.append(bool((scored[b] & (position_chunk == c)).any()))
                    prev = action
            plans.extend(chosen)
            offset += len(group)
    finally:
        model.forced_plans = None
    return OracleTraces(
        states=torch.stack(rows["state"]).cpu(),
        actions=torch.tensor(rows["action"], dtype=torch.long),
        example_index=torch.tensor(rows["example"], dtype=torch.long),
        chunk=torch.tensor(rows["chunk"], dtype=torch.long),
        losses=torch.stack(rows["loss"]),
        scored=torch.tensor(scored_rows, dtype=torch.bool),
        plans=plans,
    )


def train_bc(
    model: RouterModel,
    states: torch.Tensor,
    actions: torch.Tensor,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int | None = None,
) -> BCResult:
    """AR0: clone the oracle's actions into `model.policy` (full batch by default).

    Returns `fit_bc`'s result: per-step losses and the greedy accuracy per head on the traces
    (`.accuracy["expert"]` is the number the AR0 gate reads).
    """
    return fit_bc(model.policy, states, actions, steps, lr, seed, batch_size=batch_size)
