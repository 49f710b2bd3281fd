"""QA as a Task: the synthetic key:value retrieval set and user JSONL files (SQuAD EM/F1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.tasks.base import MetricSpec, Task, TaskExample
from engine.tasks.jsonl import load_qa_jsonl
from engine.tasks.metrics import METRICS
from engine.tasks.qa import QAExample, format_prompt, make_qa_splits, pretraining_corpus
from store.errors import BemctlError

QA_METRICS = (MetricSpec("exact_match"), MetricSpec("f1"))


def to_task_example(ex: QAExample) -> TaskExample:
    return TaskExample(
        ex.id,
        format_prompt(ex),
        tuple(ex.answers),
        {"context": ex.context, "question": ex.question},
    )


class _QATask(Task):
    metrics = QA_METRICS

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        return METRICS[metric](prediction, example.references)


class SyntheticQATask(_QATask):
    name = "synthetic_qa"

    def __init__(self, n_facts: int = 4) -> None:
        self.n_facts = n_facts

    def make_splits(self, n_train: int, n_eval: int, seed: int):
        train, evals = make_qa_splits(n_train, n_eval, seed, self.n_facts)
        return [to_task_example(e) for e in train], [to_task_example(e) for e in evals]

    def pretraining_corpus(self, n_docs: int, seed: int) -> list[str]:
        return pretraining_corpus(n_docs, seed)


class JsonlQATask(_QATask):
    """The user's own SQuAD-like data; sizes cap how many examples of each file are used."""

    name = "jsonl_qa"

    def __init__(self, train_file: Path, eval_file: Path) -> None:
        self.train_file, self.eval_file = train_file, eval_file

    def make_splits(self, n_train: int, n_eval: int, seed: int):
        train = load_qa_jsonl(self.train_file)[:n_train]
        evals = load_qa_jsonl(self.eval_file)[:n_eval]
        if len(evals) < 2:
            raise BemctlError(f"{self.eval_file}: need at least 2 eval examples (got {len(evals)})")
        _refuse_overlap(train, evals, self.eval_file)
        return [to_task_example(e) for e in train], [to_task_example(e) for e in evals]


def _refuse_overlap(train: Sequence[QAExample], evals: Sequence[QAExample], where: Path) -> None:
    overlap = {(e.context, e.question) for e in train} & {(e.context, e.question) for e in evals}
    if overlap:
        raise BemctlError(f"{where}: {len(overlap)} eval examples also occur in train_file")
