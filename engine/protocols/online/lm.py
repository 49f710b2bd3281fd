"""The online loop's `score` and `train` for an adapter on a language model, and the Fisher
of its history.

`score` decodes greedily and scores each example's answer with the task's metric (the same
`engine.evaluation.scoring.evaluate` every other protocol uses); `train` takes a few AdamW
steps of the shared training objective (`engine.training.training_loss`) on one live batch
plus the anchor penalty (EWC or proximal). The Fisher is estimated from one-example losses on
the history, as `regularizers.diagonal_fisher` requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.evaluation.scoring import evaluate
from engine.protocols.online.regularizers import AnchorPenalty, Params, diagonal_fisher
from engine.tasks.base import Task, TaskExample
from engine.training import collate, encode_example, training_loss


@dataclass(frozen=True)
class LMSetup:
    tokenizer: object  # engine.models.tokenizer.TextTokenizer
    task: Task
    device: torch.device
    max_new_tokens: int
    max_length: int
    metrics: tuple[str, ...] = ("exact_match",)


def _batch(setup: LMSetup, examples: Sequence[TaskExample]) -> dict[str, torch.Tensor]:
    rows = [
        encode_example(setup.tokenizer, ex.prompt, setup.task.target(ex), setup.max_length)
        for ex in examples
    ]
    pad = setup.tokenizer.pad_token_id  # type: ignore[attr-defined]
    return {k: v.to(setup.device) for k, v in collate(rows, pad).items()}


def make_score(setup: LMSetup):
    def score(model: nn.Module, examples: Sequence[TaskExample]) -> list[dict[str, float]]:
        model.eval()
        out = evaluate(
            model,
            setup.tokenizer,  # type: ignore[arg-type]
            setup.task,
            examples,
            list(setup.metrics),
            setup.device,
            setup.max_new_tokens,
            setup.max_length,
        )
        return [dict(out.scores[ex.id]) for ex in examples]

    return score


def make_train(setup: LMSetup, *, steps: int, learning_rate: float, seed: int):
    """One shadow update per live batch: `steps` AdamW steps on the whole batch (the
    optimiser is fresh each batch: its moments would otherwise carry a rolled-back past).
    The update of live batch b is seeded from (seed, b), so a resumed stream repeats it."""

    def train(
        model: nn.Module, examples: Sequence[TaskExample], penalty: AnchorPenalty, batch: int
    ) -> float:
        if not examples:
            return float("nan")
        torch.manual_seed(seed * 1_000_003 + batch)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
        batch = _batch(setup, examples)
        extras = [ex.features for ex in examples]
        model.train()
        loss_value = float("nan")
        for _ in range(steps):
            loss = training_loss(model, batch, extras) + penalty(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
        model.eval()
        return loss_value

    return train


def history_fisher(model: nn.Module, setup: LMSetup, history: Sequence[TaskExample]) -> Params:
    def loss_of(m: nn.Module, example: TaskExample) -> torch.Tensor:
        return training_loss(m, _batch(setup, [example]), [example.features])

    model.eval()  # no dropout in the estimate
    return diagonal_fisher(model, history, loss_of)
