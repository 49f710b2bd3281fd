"""Score every eval example, so the statistics can pair baseline and variant per example.

Sentence-level metrics give one value per example; corpus-level metrics (chrF, BLEU) give
per-example sufficient statistics, kept so the bootstrap can recompute the corpus score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from engine.evaluation.generation import greedy_generate
from engine.models.tokenizer import TextTokenizer
from engine.tasks.base import Task, TaskExample


@dataclass
class EvalOutput:
    scores: dict[str, dict[str, float]]  # example_id -> metric -> value (sentence-level)
    predictions: list[tuple[str, str, list[str], float]]  # id, prediction, references, ms
    corpus_stats: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> (n, k)
    # per example, in order: (every id fed to the model while generating, prompt length), the
    # sequences whose actual routing the dynamics report measures (engine.evaluation.dynamics)
    sequences: list[tuple[list[int], int]] = field(default_factory=list)


def evaluate(
    model: nn.Module,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    metrics: Sequence[str],
    device: torch.device,
    max_new_tokens: int,
    max_length: int,
    on_example: Callable[[int], None] | None = None,
) -> EvalOutput:
    specs = [task.metric(m) for m in metrics]
    scores: dict[str, dict[str, float]] = {}
    predictions = []
    corpus: dict[str, list[np.ndarray]] = {m.name: [] for m in specs if m.corpus_level}
    sequences: list[tuple[list[int], int]] = []
    for i, ex in enumerate(examples):
        start = time.perf_counter()
        routing: dict = {}
        pred = greedy_generate(
            model, tokenizer, ex.prompt, max_new_tokens, device, max_length, routing=routing
        )
        elapsed = (time.perf_counter() - start) * 1000.0
        sequences.append((routing["ids"][0].tolist(), int(routing["prompt_length"])))
        scores[ex.id] = {}
        for spec in specs:
            if spec.corpus_level:
                stats = np.asarray(task.corpus_stats(spec.name, pred, ex), dtype=float)
                corpus[spec.name].append(stats)
                # stored per example for inspection: the corpus formula on this one sentence
                scores[ex.id][spec.name] = float(task.corpus_score(spec.name, stats[None])[0])
            else:
                scores[ex.id][spec.name] = task.score_example(spec.name, pred, ex)
        predictions.append((ex.id, pred, list(ex.references), elapsed))
        if on_example is not None:
            on_example(i + 1)
    corpus_stats = {m: np.stack(v) for m, v in corpus.items()}
    return EvalOutput(scores, predictions, corpus_stats, sequences)
