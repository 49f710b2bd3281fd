"""Synthetic translation between two invented languages, scored with sacrebleu chrF and BLEU.

Why synthetic: a tiny byte-level model cannot learn a real language pair, but it can learn a
fixed lexicon plus a reordering rule, which exercises the same thing V3 is meant to help with
(sequence transduction scored by corpus chrF/BLEU) in seconds and without downloads.

Language A is subject-verb-object with adjectives before their noun; language B puts the verb
last and mirrors each noun phrase (noun first, then its adjectives in reverse order):

    A: <adj1> <adj2> <noun_s> <verb> <adj3> <noun_o>
    B: <noun_s'> <adj2'> <adj1'> <noun_o'> <adj3'> <verb'>

Every word maps through one fixed bilingual lexicon, so a reference is a pure function of its
source. Examples come from a SHA-256-seeded `random.Random` per (seed, split, index), and held-out
splits use the half of the source-sentence space picked by a hash of the sentence (as in
`engine.tasks.qa`), so no training stream or pre-training document can contain an eval item.

Metrics are corpus-level: `corpus_stats` returns sacrebleu's own per-sentence sufficient
statistics and `corpus_score` turns summed statistics into sacrebleu's score (0-100 scale), so a
bootstrap resample is scored exactly as `sacrebleu.corpus_chrf` / `corpus_bleu` would score it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from engine.tasks.base import MetricSpec, Task, TaskExample, disjoint_splits

HELDOUT_SPLITS: frozenset[str] = frozenset({"eval", "test"})

# (language A, language B), one entry per meaning; both columns are invented words.
NOUNS: tuple[tuple[str, str], ...] = (
    ("kalo", "brox"), ("miru", "tesk"), ("tesa", "plom"), ("voni", "grund"),
    ("lume", "vask"), ("sari", "drel"), ("peko", "skor"), ("rina", "flim"),
    ("doma", "throd"), ("fule", "zunk"), ("goti", "kreb"), ("hane", "wolt"),
)  # fmt: skip
ADJECTIVES: tuple[tuple[str, str], ...] = (
    ("zeli", "ist"), ("kuma", "olv"), ("nori", "ark"), ("tavi", "umb"), ("bela", "elt"),
    ("sumo", "yrn"), ("riko", "osk"), ("lani", "ind"), ("mepu", "arp"), ("vako", "ulm"),
)  # fmt: skip
VERBS: tuple[tuple[str, str], ...] = (
    ("sovat", "jagu"), ("kirem", "wemba"), ("lutan", "hoxo"), ("mavek", "quila"),
    ("dorin", "yemzo"), ("pesil", "xaru"), ("natur", "pivvu"), ("gelom", "zolke"),
)  # fmt: skip
LEXICON: dict[str, str] = dict(NOUNS + ADJECTIVES + VERBS)

MIN_WORDS, MAX_WORDS = 3, 6
MAX_ADJECTIVES_PER_NOUN = 2


@dataclass(frozen=True)
class Sentence:
    """One source sentence: each noun phrase is (adjectives..., noun), all language-A words."""

    subject: tuple[str, ...]
    verb: str
    obj: tuple[str, ...]

    def source(self) -> str:
        return " ".join((*self.subject, self.verb, *self.obj))

    def target(self) -> str:
        return " ".join((*_mirror(self.subject), *_mirror(self.obj), LEXICON[self.verb]))


def _mirror(phrase: tuple[str, ...]) -> tuple[str, ...]:
    """A's "adj1 adj2 noun" is B's "noun adj2 adj1"."""
    return tuple(LEXICON[w] for w in reversed(phrase))


def translate(source: str) -> str:
    """The reference translation of a language-A sentence of this task's grammar."""
    words = source.split()
    verbs = {a for a, _ in VERBS}
    at = [i for i, w in enumerate(words) if w in verbs]
    if len(at) != 1 or not all(w in LEXICON for w in words):
        raise ValueError(f"not a sentence of the synthetic grammar: {source!r}")
    i = at[0]
    return Sentence(tuple(words[:i]), words[i], tuple(words[i + 1 :])).target()


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"translation:{seed}:{split}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def is_heldout(source: str) -> bool:
    """Which half of the sentence space `source` lives in; stable and ~50/50."""
    return hashlib.sha256(f"translation\x00{source}".encode()).digest()[0] % 2 == 1


def _draw(rng: random.Random) -> Sentence:
    n_adjectives = rng.randint(MIN_WORDS, MAX_WORDS) - 3
    splits = [
        (s, n_adjectives - s)
        for s in range(n_adjectives + 1)
        if s <= MAX_ADJECTIVES_PER_NOUN and n_adjectives - s <= MAX_ADJECTIVES_PER_NOUN
    ]
    n_subject, n_object = rng.choice(splits)
    adjectives = [a for a, _ in ADJECTIVES]
    nouns = [n for n, _ in NOUNS]
    subject = (*rng.sample(adjectives, n_subject), rng.choice(nouns))
    obj = (*rng.sample(adjectives, n_object), rng.choice(nouns))
    return Sentence(subject, rng.choice(VERBS)[0], obj)


def _sentence(seed: int, split: str, index: int) -> Sentence:
    """Sentence `index` of a split stream, rejection-sampled into the split's half."""
    rng = _rng(seed, split, index)
    heldout = split in HELDOUT_SPLITS
    while True:
        sentence = _draw(rng)
        if is_heldout(sentence.source()) == heldout:
            return sentence


def format_prompt(source: str) -> str:
    """Ends at "=>" so the target starts with a space, as every task's target does."""
    return f"translate: {source}\n=>"


def _example(seed: int, split: str, index: int) -> TaskExample:
    sentence = _sentence(seed, split, index)
    source = sentence.source()
    return TaskExample(
        f"{split}-{seed}-{index:05d}",
        format_prompt(source),
        (sentence.target(),),
        {"source": source},
    )


# sacrebleu's defaults, i.e. what `sacrebleu.corpus_chrf` / `corpus_bleu` and the CLI use
_SCORERS = {"chrf": CHRF, "bleu": BLEU}


class TranslationTask(Task):
    name = "synthetic_translation"
    metrics = (MetricSpec("chrf", corpus_level=True), MetricSpec("bleu", corpus_level=True))

    def __init__(self) -> None:
        self._scorers = {name: cls() for name, cls in _SCORERS.items()}

    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        """Train and eval streams from disjoint halves; eval also skips anything in train."""
        return disjoint_splits(
            lambda split, i: _example(seed, split, i),
            n_train,
            n_eval,
            lambda ex: ex.features["source"],
        )

    def pretraining_corpus(self, n_docs: int, seed: int, pairs_per_doc: int = 3) -> list[str]:
        """Documents of `pairs_per_doc` prompt+target pairs, all from the training half."""
        docs = []
        for d in range(n_docs):
            lines = []
            for k in range(pairs_per_doc):
                sentence = _sentence(seed, "pretrain", d * pairs_per_doc + k)
                lines.append(f"{format_prompt(sentence.source())} {sentence.target()}\n")
            docs.append("".join(lines))
        return docs

    def _scorer(self, metric: str) -> CHRF | BLEU:
        self.metric(metric)  # KeyError naming the known metrics
        return self._scorers[metric]

    def corpus_stats(self, metric: str, prediction: str, example: TaskExample) -> np.ndarray:
        """sacrebleu's sufficient statistics of one sentence against all its references."""
        scorer = self._scorer(metric)
        refs = [[ref] for ref in example.references]
        stats = scorer._extract_corpus_statistics([prediction], refs)[0]
        return np.asarray(stats, dtype=np.float64)

    def corpus_score(self, metric: str, summed: np.ndarray) -> np.ndarray:
        """(m, k) summed statistics -> (m,) sacrebleu scores (0-100)."""
        scorer = self._scorer(metric)
        rows = np.atleast_2d(np.asarray(summed, dtype=np.float64))
        # statistics are counts; sacrebleu computes on ints, so hand it ints
        return np.array(
            [scorer._compute_score_from_stats([int(round(v)) for v in row]).score for row in rows]
        )
