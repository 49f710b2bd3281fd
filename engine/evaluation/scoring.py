"""Score every eval example, so the statistics can pair baseline and variant per example."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.evaluation.generation import greedy_generate
from engine.models.tokenizer import TextTokenizer
from engine.tasks.metrics import METRICS
from engine.tasks.qa import QAExample, format_prompt


@dataclass
class EvalOutput:
    scores: dict[str, dict[str, float]]  # example_id -> metric -> value
    predictions: list[tuple[str, str, list[str], float]]  # id, prediction, references, ms


def evaluate_qa(
    model: nn.Module,
    tokenizer: TextTokenizer,
    examples: Sequence[QAExample],
    metrics: Sequence[str],
    device: torch.device,
    max_new_tokens: int,
    max_length: int,
    on_example: Callable[[int], None] | None = None,
) -> EvalOutput:
    scores: dict[str, dict[str, float]] = {}
    predictions = []
    for i, ex in enumerate(examples):
        start = time.perf_counter()
        pred = greedy_generate(
            model, tokenizer, format_prompt(ex), max_new_tokens, device, max_length
        )
        elapsed = (time.perf_counter() - start) * 1000.0
        scores[ex.id] = {m: METRICS[m](pred, ex.answers) for m in metrics}
        predictions.append((ex.id, pred, list(ex.answers), elapsed))
        if on_example is not None:
            on_example(i + 1)
    return EvalOutput(scores, predictions)
