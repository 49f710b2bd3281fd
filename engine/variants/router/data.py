"""What the router's training stages share: teacher actions, batches and per-position losses.

Why per *position* and not per token: the logit that predicts token i+1 is computed at
position i, with the adapter of position i's chunk. So the choice made for chunk c changes
exactly the predictions made at positions in chunk c (and, through K/V, later ones), which is
how the oracle attributes a target token's loss to a chunk (`position_losses`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.models.tokenizer import TextTokenizer
from engine.router.actions import Action, ActionSpace
from engine.tasks.base import Task, TaskExample
from engine.training import IGNORE, collate, encode_example, prompt_length


def full_action(space: ActionSpace, expert: int, span: int = 1) -> Action:
    """Expert `expert` at full rank budget (1.0) and bias scale 1.0: what teacher forcing and
    the oracle apply, i.e. the expert exactly as it was trained."""
    if 1.0 not in space.rank_budgets or 1.0 not in space.bias_scales:
        raise ValueError("the action space needs a rank budget 1.0 and a bias scale 1.0")
    return space.validate(
        Action(expert, span, space.rank_budgets.index(1.0), space.bias_scales.index(1.0))
    )


@dataclass(frozen=True)
class EncodedBatch:
    """Right-padded prompt+target(+EOS) ids; labels are IGNORE outside the target."""

    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    lengths: list[int]

    def n_chunks(self, chunk_size: int) -> list[int]:
        return [math.ceil(n / chunk_size) for n in self.lengths]

    def prompt_lengths(self) -> torch.Tensor:
        """(B,) prompt tokens of each row (labels before its first target token), where
        prompt-routed chunks end (`engine.variants.prompt_routing`)."""
        return torch.tensor(
            [prompt_length(row) for row in self.labels.tolist()],
            dtype=torch.long,
            device=self.labels.device,
        )

    def scored(self) -> torch.Tensor:
        """(B, T-1) bool: position i predicts a target token (labels[i+1] is defined)."""
        return self.labels[:, 1:] != IGNORE


def encode_batch(
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    max_length: int,
    device: torch.device,
) -> EncodedBatch:
    """The examples as training sees them (`engine.training.encode_example` + `collate`)."""
    rows = [encode_example(tokenizer, ex.prompt, task.target(ex), max_length) for ex in examples]
    batch = collate(rows, tokenizer.pad_token_id)
    return EncodedBatch(
        batch["input_ids"].to(device),
        batch["labels"].to(device),
        batch["attention_mask"].to(device),
        [len(ids) for ids, _ in rows],
    )


def position_losses(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """(B, L-1) cross-entropy of the token each position predicts (0 where not a target).

    `input_ids` may be a causal prefix (L <= labels' T) of the sequence labels belong to:
    positions only see earlier tokens, so a prefix gives the same losses for its positions.
    """
    length = input_ids.shape[1]
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    target = labels[:, 1:length]
    losses = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        target.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    )
    return losses.view(target.shape)


def batches(items: Sequence, size: int) -> list[Sequence]:
    if size < 1:
        raise ValueError(f"batch size must be >= 1 (got {size})")
    return [items[i : i + size] for i in range(0, len(items), size)]
