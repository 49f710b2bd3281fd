"""What every task provides to training, evaluation and statistics.

A task turns a seed into disjoint train/eval examples, says what the model should learn to
produce for each, and scores predictions. Sentence-level metrics give one value per example
(averaged, then paired); corpus-level metrics (chrF, BLEU) give per-example *sufficient
statistics* whose sums determine the score, so the bootstrap can recompute the corpus score
on every resample instead of averaging sentence scores, which would be a different metric.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TaskExample:
    id: str
    prompt: str  # what the model conditions on
    references: tuple[str, ...]  # acceptable outputs; references[0] is the training target
    features: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    corpus_level: bool = False


class Task(ABC):
    """One task: data, the training target, and its metrics."""

    name: str
    metrics: tuple[MetricSpec, ...]

    @abstractmethod
    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        """Deterministic, disjoint train and eval examples."""

    def target(self, example: TaskExample) -> str:
        """The completion to learn after the prompt; the newline ends generation."""
        return f" {example.references[0]}\n"

    def pretraining_corpus(self, n_docs: int, seed: int) -> list[str]:
        """Documents in the task's format from its training half only (default: none)."""
        return []

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        known = ", ".join(m.name for m in self.metrics)
        raise KeyError(f"task {self.name!r} has no metric {name!r} (known: {known})")

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        """Sentence-level metric value of one prediction (sentence-level metrics only)."""
        raise NotImplementedError(f"{self.name}: {metric} is not a sentence-level metric")

    def corpus_stats(self, metric: str, prediction: str, example: TaskExample) -> np.ndarray:
        """Per-example sufficient statistics (k,) of a corpus-level metric."""
        raise NotImplementedError(f"{self.name}: {metric} is not a corpus-level metric")

    def corpus_score(self, metric: str, summed: np.ndarray) -> np.ndarray:
        """Corpus scores (m,) from summed statistics (m, k)."""
        raise NotImplementedError(f"{self.name}: {metric} is not a corpus-level metric")

    def corpus_value(
        self, metric: str, predictions: Sequence[str], examples: Sequence[TaskExample]
    ) -> float:
        """The corpus score of a whole prediction set (what a report shows as the mean)."""
        stats = np.stack(
            [self.corpus_stats(metric, p, e) for p, e in zip(predictions, examples, strict=True)]
        )
        return float(self.corpus_score(metric, stats.sum(0, keepdims=True))[0])


def disjoint_splits(
    example: Callable[[str, int], TaskExample],
    n_train: int,
    n_eval: int,
    key: Callable[[TaskExample], object],
) -> tuple[list[TaskExample], list[TaskExample]]:
    """Train items 0..n_train-1 of the "train" stream and exactly `n_eval` of the "eval" stream.

    Tasks already draw eval from the held-out half of their item space; this also skips any
    eval item whose `key` occurs in train (ids keep their stream index, so they may skip).
    """
    if n_train < 0 or n_eval < 0:
        raise ValueError(f"split sizes must be >= 0 (got {n_train}, {n_eval})")
    train = [example("train", i) for i in range(n_train)]
    seen = {key(ex) for ex in train}
    evals: list[TaskExample] = []
    index = 0
    while len(evals) < n_eval:
        ex = example("eval", index)
        index += 1
        if key(ex) not in seen:
            evals.append(ex)
    return train, evals
