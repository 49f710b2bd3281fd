"""The embedded base model's pre-training corpus: every synthetic task's training half, mixed.

One base serves every experiment (so all comparisons start from the same weights), so it
sees the format of every synthetic task; each task's documents come only from its training
half of the item space, so no evaluation item can occur here.
"""

from __future__ import annotations

import random

from engine.tasks.base import Task

# Share of documents per task; the QA look-up is the hardest to learn, so it gets the most.
MIX: tuple[tuple[str, float], ...] = (
    ("synthetic_qa", 0.4),
    ("synthetic_translation", 0.3),
    ("synthetic_json", 0.3),
)


def _task(name: str) -> Task:
    from engine.tasks.qa_task import SyntheticQATask
    from engine.tasks.structured import StructuredOutputTask
    from engine.tasks.translation import TranslationTask

    return {
        "synthetic_qa": SyntheticQATask,
        "synthetic_translation": TranslationTask,
        "synthetic_json": StructuredOutputTask,
    }[name]()


def pretraining_mix(n_docs: int, seed: int) -> list[str]:
    """`n_docs` documents in MIX proportions, deterministically shuffled."""
    docs: list[str] = []
    remaining = n_docs
    for i, (name, share) in enumerate(MIX):
        count = remaining if i == len(MIX) - 1 else round(n_docs * share)
        docs.extend(_task(name).pretraining_corpus(count, seed))
        remaining -= count
    random.Random(f"pretrain-mix:{seed}").shuffle(docs)
    return docs
