"""Retrieval QA over evidence passages: one passage answers the question, the rest distract.

Why a separate task from `synthetic_qa`: V2 re-ranks evidence before generating, which needs
prompts that *are* a list of passages. Each prompt lists `n_passages` lines of
`facts_per_passage` "key: value" facts; exactly one passage holds the asked key, and every other
passage has the same shape with other keys. One distractor key is a near miss of the asked key
(one letter changed, e.g. "abc" vs "abx"), because distractors a bag-of-letters match cannot
tell apart are what a re-ranker is for:

    [1] kqz: red; abx: owl
    [2] mfe: pear; abc: fox
    [3] ...
    Q: what is abc?
    A:                       -> " fox\n"

`features` carry {"relevant_passage": 0-based index, "n_passages": k}; V2 trains its re-ranker
on the first and checks the second against its own config.

Determinism and disjointness follow `engine.tasks.qa`: each example comes from a SHA-256-seeded
`random.Random` per (seed, split, index), held-out splits ("eval", "test") draw from the half of
the (context, question) space picked by a hash of that pair, and `make_splits` also checks eval
against train explicitly, so no training stream or pre-training document holds an eval item.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

from engine.tasks.base import MetricSpec, Task, TaskExample, disjoint_splits
from engine.tasks.metrics import METRICS
from engine.tasks.qa import VALUES
from store.errors import BemctlError

HELDOUT_SPLITS: frozenset[str] = frozenset({"eval", "test"})
RETRIEVAL_METRICS = (MetricSpec("exact_match"), MetricSpec("f1"))

_LETTERS = string.ascii_lowercase
_EXCLUDED_KEYS = frozenset(VALUES)  # a key spelled like a value would make facts ambiguous


@dataclass(frozen=True)
class RetrievalItem:
    """One question with its passages (unlabelled fact lists) and the relevant one's index."""

    passages: tuple[str, ...]
    key: str
    answer: str
    relevant: int

    @property
    def context(self) -> str:
        return "\n".join(f"[{i + 1}] {p}" for i, p in enumerate(self.passages))

    @property
    def question(self) -> str:
        return f"what is {self.key}?"

    @property
    def prompt(self) -> str:
        """Passages one per line, then the question; ends at "A:" so the target starts with a
        space (as in `synthetic_qa`)."""
        return f"{self.context}\nQ: {self.question}\nA:"


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"retrieval_qa:{seed}:{split}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def is_heldout(context: str, question: str) -> bool:
    """Which half of the item space a (context, question) pair lives in; stable and ~50/50."""
    digest = hashlib.sha256(f"retrieval_qa\x00{context}\x00{question}".encode()).digest()
    return digest[0] % 2 == 1


def _fresh_key(rng: random.Random, taken: set[str]) -> str:
    while True:
        key = "".join(rng.choice(_LETTERS) for _ in range(3))
        if key not in taken and key not in _EXCLUDED_KEYS:
            taken.add(key)
            return key


def _near_miss(rng: random.Random, key: str, taken: set[str]) -> str:
    """`key` with one letter changed: shares two letters in place with the asked key."""
    while True:
        at = rng.randrange(len(key))
        letter = rng.choice(_LETTERS.replace(key[at], ""))
        near = key[:at] + letter + key[at + 1 :]
        if near not in taken and near not in _EXCLUDED_KEYS:
            taken.add(near)
            return near


def _draw(rng: random.Random, n_passages: int, facts_per_passage: int) -> RetrievalItem:
    relevant = rng.randrange(n_passages)
    slot = rng.randrange(facts_per_passage)
    taken: set[str] = set()
    asked = _fresh_key(rng, taken)
    keys: list[list[str | None]] = [[None] * facts_per_passage for _ in range(n_passages)]
    keys[relevant][slot] = asked
    decoy = rng.choice([i for i in range(n_passages) if i != relevant])
    keys[decoy][rng.randrange(facts_per_passage)] = _near_miss(rng, asked, taken)
    passages = []
    answer = ""
    for i, row in enumerate(keys):
        facts = []
        for j, key in enumerate(row):
            key = key if key is not None else _fresh_key(rng, taken)
            value = rng.choice(VALUES)
            if (i, j) == (relevant, slot):
                answer = value
            facts.append(f"{key}: {value}")
        passages.append("; ".join(facts))
    return RetrievalItem(tuple(passages), asked, answer, relevant)


def draw_item(
    seed: int, split: str, index: int, n_passages: int = 4, facts_per_passage: int = 2
) -> RetrievalItem:
    """Item `index` of a split stream, rejection-sampled into the split's half of the space."""
    if n_passages < 2 or facts_per_passage < 1:
        raise ValueError(
            f"need n_passages >= 2 and facts_per_passage >= 1 "
            f"(got {n_passages}, {facts_per_passage})"
        )
    rng = _rng(seed, split, index)
    heldout = split in HELDOUT_SPLITS
    while True:
        item = _draw(rng, n_passages, facts_per_passage)
        if is_heldout(item.context, item.question) == heldout:
            return item


class RetrievalQATask(Task):
    """Questions over `n_passages` evidence passages, scored with SQuAD EM and token F1."""

    name = "retrieval_qa"
    metrics = RETRIEVAL_METRICS

    def __init__(self, n_passages: int = 4, facts_per_passage: int = 2) -> None:
        if n_passages < 2:
            raise BemctlError(f"retrieval_qa: n_passages must be >= 2 (got {n_passages})")
        if facts_per_passage < 1:
            raise BemctlError(
                f"retrieval_qa: facts_per_passage must be >= 1 (got {facts_per_passage})"
            )
        self.n_passages, self.facts_per_passage = n_passages, facts_per_passage

    def item(self, seed: int, split: str, index: int) -> RetrievalItem:
        return draw_item(seed, split, index, self.n_passages, self.facts_per_passage)

    def _example(self, seed: int, split: str, index: int) -> TaskExample:
        item = self.item(seed, split, index)
        return TaskExample(
            f"{split}-{seed}-{index:05d}",
            item.prompt,
            (item.answer,),
            {"relevant_passage": item.relevant, "n_passages": self.n_passages},
        )

    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        """Train and eval streams from disjoint halves; eval also skips anything in train."""
        return disjoint_splits(
            lambda split, i: self._example(seed, split, i), n_train, n_eval, lambda ex: ex.prompt
        )

    def pretraining_corpus(self, n_docs: int, seed: int) -> list[str]:
        """Each document is one "pretrain"-stream passage list followed by questions about
        every key in it (shuffled), keeping only questions in the training half of the space."""
        docs = []
        for index in range(n_docs):
            item = self.item(seed, "pretrain", index)
            facts = [
                fact.split(": ", 1) for passage in item.passages for fact in passage.split("; ")
            ]
            _rng(seed, "pretrain-order", index).shuffle(facts)
            lines = [item.context]
            for key, value in facts:
                question = f"what is {key}?"
                if not is_heldout(item.context, question):
                    lines.append(f"Q: {question}\nA: {value}")
            docs.append("\n".join(lines) + "\n")
        return docs

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        return METRICS[metric](prediction, example.references)
