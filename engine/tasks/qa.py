"""Synthetic key:value retrieval QA, generated deterministically from a seed.

Each context lists a few "key: value" facts and the question asks for one key, so the only way to
answer is to look it up in the context; the other facts are distractors. Tiny models learn this
quickly, which keeps adapter comparisons cheap while still measuring in-context retrieval.

Every example is drawn from its own `random.Random`, seeded by a SHA-256 of
f"{seed}:{split}:{index}", so any example can be regenerated on its own and results are identical
across processes and Python versions (unlike the salted built-in `hash()`).

Held-out splits ("eval", "test") and all other splits ("train", "pretrain", ...) draw from two
disjoint halves of the (context, question) space, chosen by a hash of that pair. This makes it
impossible for the pre-training corpus or any training stream, of any size, to contain an
evaluation item; `make_qa_splits` additionally checks eval against train explicitly.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from dataclasses import dataclass

VALUES: tuple[str, ...] = (
    "red", "blue", "green", "pink", "gold", "gray", "black", "white", "brown", "teal",
    "otter", "fox", "owl", "cat", "dog", "bear", "wolf", "frog", "hawk", "mole",
    "plum", "pear", "lime", "fig", "kiwi", "date", "apple", "lemon", "grape", "peach",
    "oak", "pine", "rose", "moss", "fern", "salt", "rice", "corn", "milk", "bread",
)  # fmt: skip

HELDOUT_SPLITS: frozenset[str] = frozenset({"eval", "test"})

_KEY_LETTERS = string.ascii_lowercase
_EXCLUDED_KEYS = frozenset(VALUES)  # a key spelled like a value would make facts ambiguous


@dataclass(frozen=True)
class QAExample:
    """One QA item; `answers` holds every acceptable reference (SQuAD allows several)."""

    id: str
    context: str
    question: str
    answers: tuple[str, ...]


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _is_heldout(context: str, question: str) -> bool:
    """Which half of the item space a (context, question) pair lives in; stable and ~50/50."""
    digest = hashlib.sha256(f"{context}\x00{question}".encode()).digest()
    return digest[0] % 2 == 1


def _draw(rng: random.Random, n_facts: int) -> tuple[str, str, str]:
    keys: list[str] = []
    while len(keys) < n_facts:
        key = "".join(rng.choice(_KEY_LETTERS) for _ in range(3))
        if key not in keys and key not in _EXCLUDED_KEYS:
            keys.append(key)
    values = [rng.choice(VALUES) for _ in keys]
    target = rng.randrange(n_facts)
    context = "; ".join(f"{k}: {v}" for k, v in zip(keys, values, strict=True))
    return context, f"what is {keys[target]}?", values[target]


def _example(seed: int, split: str, index: int, n_facts: int) -> QAExample:
    """Example `index` of a split stream, rejection-sampled into the split's half of the space."""
    rng = _rng(seed, split, index)
    heldout = split in HELDOUT_SPLITS
    while True:
        context, question, answer = _draw(rng, n_facts)
        if _is_heldout(context, question) == heldout:
            return QAExample(f"{split}-{seed}-{index:05d}", context, question, (answer,))


def distinct_items(n_facts: int) -> int:
    """How many distinct (context, question) pairs `n_facts` facts can make: ordered distinct
    keys (3 letters, not spelled like a value), a value each, one of them asked. Each split
    draws from about half of them."""
    keys = len(_KEY_LETTERS) ** 3 - sum(1 for v in _EXCLUDED_KEYS if len(v) == 3)
    return math.perm(keys, n_facts) * len(VALUES) ** n_facts * n_facts


def generate_qa(n: int, seed: int, split: str, n_facts: int = 4) -> list[QAExample]:
    """Return examples 0..n-1 of the (seed, split) stream; same arguments, same list."""
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    if n_facts < 1:
        raise ValueError(f"n_facts must be >= 1 (got {n_facts})")
    return [_example(seed, split, i, n_facts) for i in range(n)]


def make_qa_splits(
    n_train: int, n_eval: int, seed: int, n_facts: int = 4
) -> tuple[list[QAExample], list[QAExample]]:
    """Train and eval sets from separate streams, with eval guaranteed disjoint from train.

    An eval item whose (context, question) also occurs in train is skipped and the eval stream
    continues with further indices, so eval still has exactly `n_eval` items (ids keep the stream
    index, so they may skip numbers).
    """
    if n_eval < 0:
        raise ValueError(f"n_eval must be >= 0 (got {n_eval})")
    train = generate_qa(n_train, seed, "train", n_facts)
    seen = {(ex.context, ex.question) for ex in train}
    evals: list[QAExample] = []
    index = 0
    while len(evals) < n_eval:
        ex = _example(seed, "eval", index, n_facts)
        index += 1
        if (ex.context, ex.question) not in seen:
            evals.append(ex)
    return train, evals


def format_prompt(ex: QAExample) -> str:
    """The text the model conditions on; ends at "A:" so the target starts with a space."""
    return f"{ex.context}\nQ: {ex.question}\nA:"


def format_target(answer: str) -> str:
    """The completion to learn; the trailing newline is the stop signal for generation."""
    return f" {answer}\n"


def pretraining_corpus(n_docs: int, seed: int) -> list[str]:
    """Documents for briefly pre-training the base model on the task format.

    Each document is one "pretrain"-stream context followed by questions about every key in it
    (in a random order), because a tiny model learns the look-up far sooner when most of its
    next-token signal is look-ups rather than unpredictable random keys. A question is kept
    only if its (context, question) pair lies in the training half of the item space, so no
    document can ever contain an eval item of `make_qa_splits` for any seed or size.
    """
    docs = []
    for index, ex in enumerate(generate_qa(n_docs, seed, "pretrain")):
        rng = _rng(seed, "pretrain-order", index)
        facts = [fact.split(": ", 1) for fact in ex.context.split("; ")]
        rng.shuffle(facts)
        lines = [ex.context]
        for key, value in facts:
            question = f"what is {key}?"
            if not _is_heldout(ex.context, question):
                lines.append(f"Q: {question}\nA: {value}")
        docs.append("\n".join(lines) + "\n")
    return docs
