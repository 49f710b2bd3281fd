"""AR0's teacher: a greedy oracle that scores every expert on each chunk, and BC on its traces.

The oracle walks an example's chunks in order. At a chunk c that predicts some target token
it tries every expert e and scores e by the mean LM loss of the target tokens *predicted from
positions in chunk c* (see `engine.variants.router.data`); the plan tried is [oracle
actions up to the previous scored chunk] + [e for every chunk since then, c included]. The
label is the argmin (ties -> the lower expert id, `torch.argmin`'s rule), and it is given to
those lead-in chunks too.

Why lead-in chunks take the label of the scored chunk they lead to: a chunk that predicts no
target token (the context, most of the prompt) has no loss of its own, but its action shapes
the K/V the answer attends to. The experts were trained with their domain's whole sequence
routed to them (`engine.variants.router.experts`), so the answer's expert scores as
trained only when the context leading to it was routed the same way; and routing it so saves
a switch. (An earlier version labelled such chunks expert 0 by the tie rule, which taught the
policy to switch at the answer chunk; measured on the embedded model, AR0 then mostly never switched
and lost to the static baseline on format validity, 0.317 vs 0.958.) Chunks after the last
scored one keep its label; an example with no scored chunk is all expert 0.

By causality the predictions from chunk c do not depend on later chunks' actions, so the
greedy walk needs no assumption about what comes after.

States are built exactly as `RouterModel.plan` builds them (`chunk_states`, told where each
prompt ends, + `state` with the oracle's previous action): the prompt's chunks from the
prompt, later chunks from the chunks before them, so a policy cloned on them sees at
inference (prefill, then decoding) what it saw here.
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
from engine.tasks.base import Task, TaskExample
from engine.variants.router.data import batches, encode_batch, full_action, position_losses

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
            chosen: list[list[Action]] = [[] for _ in group]  # up to the last scored chunk
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
                        model.forced_plans = [
                            chosen[b] + [actions[e]] * (c + 1 - len(chosen[b])) for b in need
                        ]
                        losses = position_losses(model, ids, mask, batch.labels[need])
                        mean = (losses * weights).sum(1) / weights.sum(1)
                        chunk_losses[need, c, e] = mean.cpu()
                for b in need:  # the label covers the lead-in chunks since the last scored one
                    best = actions[int(chunk_losses[b, c].argmin())]
                    chosen[b].extend([best] * (c + 1 - len(chosen[b])))
            for b in range(len(group)):  # trailing unscored chunks keep the last label
                last = chosen[b][-1] if chosen[b] else actions[0]
                chosen[b].extend([last] * (n_chunks[b] - len(chosen[b])))
            previous, evidence = model.chunk_states(batch.input_ids, batch.prompt_lengths())
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


def with_any_previous_action(
    model: RouterModel, traces: OracleTraces
) -> tuple[torch.Tensor, torch.Tensor]:
    """BC training rows: the traces plus, for every decision after a sequence's first, one
    copy per expert as the previous action (full rank, bias 1), with the same label.

    Why: in the traces the previous action is the oracle's own, and since lead-in chunks
    carry the answer chunk's label it nearly always equals the label; a policy cloned on
    them learns to copy its previous action. At inference the previous action is the
    policy's, so copying locks in whatever the first decision guessed. Measured on the
    embedded model (quick AR0, 60 eval prompts, when the first chunk was still decided
    blind): without these rows the answer chunk got the right expert 20/60 times and no
    sequence ever switched; with them 47/60. (The first chunk is now decided from the
    prompt, but a wrong first guess must still be correctable at the next boundary.)
    """
    from engine.variants.router.data import full_action

    prefix = model.state_dim - model.space.one_hot_dim
    later = traces.chunk >= 1
    states, actions = [traces.states], [traces.actions]
    for expert in range(model.config.n_experts):
        copies = traces.states[later].clone()
        copies[:, prefix:] = model.space.one_hot(full_action(model.space, expert))
        states.append(copies)
        actions.append(traces.actions[later])
    return torch.cat(states), torch.cat(actions)


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
