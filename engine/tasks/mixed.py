"""Mixed-domain synthetic task: look a value up in the context, then answer in a requested format.

Why: the agentic router (issue 7) trains one LoRA expert per domain and routes per 64-token
chunk, so it needs prompts in which two domains genuinely meet. Every prompt is a key:value
retrieval question (the QA domain, always present) with an output instruction that picks the
second domain; the instruction opens the prompt (so a chunk router can see it before the answer
chunk) and the domain's cue closes it:

    reply: translated
    ufn: bela sumo fule; cjl: nori fule; owb: lume; ocx: goti
    Q: what is cjl?
    =>                         -> " zunk ark\\n"

- `qa` ("reply: plain", cue "A:"): the value as is, " nori fule".
- `json` ("reply: json", cue "JSON:"): the value as a JSON object, ' {"answer": "nori fule"}'.
- `transduce` ("reply: translated", cue "=>"): the value mapped into language B by
  `engine.tasks.translation`'s lexicon and noun-phrase rule (a noun phrase is mirrored: noun
  first, then its adjectives reversed), " zunk ark".

Values are language-A noun phrases (0-2 adjectives + a noun) of the translation task, so the same
context supports all three domains and only the instruction line tells them apart. The cues are
the ones the base model saw in pre-training for QA, JSON and translation.

`features` of each example:
- "domain": the output domain; "context", "question", "key", "value" (the raw looked-up value).
- "domain_spans": [(start, end, domain), ...] half-open *character* offsets into
  `prompt + task.target(example)` (the full training text without EOS), contiguous, in order,
  covering it exactly, adjacent spans of the same domain merged. The instruction line is the
  example's domain, the context and question (through the question's newline) are "qa", the
  cue and the target the example's domain again (so a `qa` example is one span). All text is
  ASCII, so with the byte tokenizer a character offset is a token offset and `chunk_domains`
  labels 64-token chunks.

Domains rotate with the stream index (qa, json, transduce, ...), so any split is balanced to
within one example per domain. Determinism and disjointness follow `engine.tasks.qa`: one
SHA-256-seeded `random.Random` per (seed, split, index), and held-out splits draw from the half
of the (context, question) space picked by a hash of the pair; `make_splits` also skips any
eval item whose (context, question) occurs in train.

Sizes: prompt + target + EOS must fit model.max_length (256) and span at least two 64-token
chunks, which holds for n_facts 3..9 (`fact_range`, checked when the task is built); the default
4 gives 81-147 tokens (2-3 chunks), 9 reaches the fourth chunk. The task adds nothing to the base
model's pre-training mix (`engine.tasks.corpus` is unchanged), so its prompts are new to it.

Metrics: `exact_match` and `f1` are SQuAD's (`engine.tasks.metrics`) against the formatted
reference (for json, SQuAD normalisation drops the punctuation, leaving "answer <value>");
`format_validity` is 1 when the output has the requested format (`format_valid`).
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Sequence

from engine.tasks.base import MetricSpec, Task, TaskExample, disjoint_splits
from engine.tasks.metrics import METRICS
from engine.tasks.qa import VALUES
from engine.tasks.structured import render, validity
from engine.tasks.translation import ADJECTIVES, LEXICON, MAX_ADJECTIVES_PER_NOUN, NOUNS
from store.errors import BemctlError

DOMAINS: tuple[str, ...] = ("qa", "json", "transduce")
HELDOUT_SPLITS: frozenset[str] = frozenset({"eval", "test"})
MIXED_METRICS = (MetricSpec("exact_match"), MetricSpec("f1"), MetricSpec("format_validity"))
JSON_KEY = "answer"
JSON_SCHEMA = {JSON_KEY: "string"}

# domain -> (instruction word, answer cue); the cues are those of synthetic QA, JSON, translation
_INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "qa": ("plain", "A:"),
    "json": ("json", "JSON:"),
    "transduce": ("translated", "=>"),
}
MAX_TOKENS = 256  # the spec's default model.max_length; an example must fit in it
CHUNK_SIZE = 64  # the router's chunk length in tokens
MIN_CHUNKS = 2  # a single-chunk example would leave the router nothing to route
# data.max_new_tokens a spec needs: the longest target, ' {"answer": "<2 adj + noun>"}\n'
MIN_NEW_TOKENS = 30

_KEY_LETTERS = string.ascii_lowercase
# a key spelled like a value or a lexicon word would make facts or answers ambiguous
_EXCLUDED_KEYS = frozenset(VALUES) | frozenset(LEXICON) | frozenset(LEXICON.values())
_A_NOUNS = tuple(a for a, _ in NOUNS)
_A_ADJECTIVES = tuple(a for a, _ in ADJECTIVES)
_A_NOUNS_SET = frozenset(_A_NOUNS)
_A_ADJECTIVES_SET = frozenset(_A_ADJECTIVES)
_B_NOUNS = frozenset(b for _, b in NOUNS)
_B_ADJECTIVES = frozenset(b for _, b in ADJECTIVES)


# ---------------------------------------------------------------- transduction and formats


def transduce(phrase: str) -> str:
    """Language-A noun phrase -> language B: the rule `translation.Sentence.target` applies to
    each of its noun phrases (every word through the lexicon, order mirrored)."""
    words = phrase.split()
    if not _is_phrase(words, _A_ADJECTIVES_SET, _A_NOUNS_SET, noun_last=True):
        raise ValueError(f"not a language-A noun phrase: {phrase!r}")
    return " ".join(LEXICON[w] for w in reversed(words))


def _is_phrase(
    words: Sequence[str], adjectives: frozenset[str], nouns: frozenset[str], noun_last: bool
) -> bool:
    if not 1 <= len(words) <= 1 + MAX_ADJECTIVES_PER_NOUN:
        return False
    noun, rest = (words[-1], words[:-1]) if noun_last else (words[0], words[1:])
    return noun in nouns and all(w in adjectives for w in rest)


def render_answer(value: str, domain: str) -> str:
    """The reference output for `value` in `domain` (one line, no surrounding spaces)."""
    if domain == "qa":
        return value
    if domain == "json":
        return render({JSON_KEY: value})
    if domain == "transduce":
        return transduce(value)
    raise ValueError(f"unknown domain {domain!r} (known: {', '.join(DOMAINS)})")


def format_valid(prediction: str, domain: str) -> bool:
    """Whether `prediction` (outer whitespace ignored) has `domain`'s output format.

    qa: the value "as is", i.e. a language-A noun phrase (at most two A adjectives, then an A
    noun) on one line; json: one strict JSON object with a string under "answer"
    (`structured.validity`; extra keys allowed, as in `synthetic_json`); transduce: a language-B
    noun phrase (a B noun, then at most two B adjectives). The two lexicons are disjoint, so the
    three formats exclude each other: an answer in another domain's format is invalid, which is
    what lets a router's reward tell a wrongly chosen expert from a right one.
    """
    text = prediction.strip()
    if domain == "qa":
        return _is_phrase(text.split(" "), _A_ADJECTIVES_SET, _A_NOUNS_SET, noun_last=True)
    if domain == "json":
        return validity(text, JSON_SCHEMA) == 1.0
    if domain == "transduce":
        return _is_phrase(text.split(" "), _B_ADJECTIVES, _B_NOUNS, noun_last=False)
    raise ValueError(f"unknown domain {domain!r} (known: {', '.join(DOMAINS)})")


# ---------------------------------------------------------------- generation


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"mixed:{seed}:{split}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def is_heldout(context: str, question: str) -> bool:
    """Which half of the item space a (context, question) pair lives in; stable and ~50/50."""
    digest = hashlib.sha256(f"mixed\x00{context}\x00{question}".encode()).digest()
    return digest[0] % 2 == 1


def domain_of(index: int) -> str:
    """Domains rotate with the stream index, so every split is balanced to within one."""
    return DOMAINS[index % len(DOMAINS)]


def _phrase(rng: random.Random) -> str:
    n_adjectives = rng.randint(0, MAX_ADJECTIVES_PER_NOUN)
    return " ".join((*rng.sample(_A_ADJECTIVES, n_adjectives), rng.choice(_A_NOUNS)))


def _draw(rng: random.Random, n_facts: int) -> tuple[str, str, str, str]:
    keys: list[str] = []
    while len(keys) < n_facts:
        key = "".join(rng.choice(_KEY_LETTERS) for _ in range(3))
        if key not in keys and key not in _EXCLUDED_KEYS:
            keys.append(key)
    values = [_phrase(rng) for _ in keys]
    target = rng.randrange(n_facts)
    context = "; ".join(f"{k}: {v}" for k, v in zip(keys, values, strict=True))
    return context, f"what is {keys[target]}?", keys[target], values[target]


def _parts(context: str, question: str, domain: str) -> tuple[str, str, str]:
    """(instruction line, retrieval part, cue) of the prompt; the prompt is their concatenation.

    The instruction comes first so that it lies in an earlier 64-token chunk than the answer:
    a router decides a chunk's expert from the chunks before it, and with the instruction next
    to the cue no decision could ever see which format is asked for.
    """
    word, cue = _INSTRUCTIONS[domain]
    return f"reply: {word}\n", f"{context}\nQ: {question}\n", cue


def _spans(header: str, retrieval: str, rest: str, domain: str) -> list[tuple[int, int, str]]:
    end = len(header) + len(retrieval) + len(rest)
    if domain == "qa":
        return [(0, end, "qa")]
    middle = len(header) + len(retrieval)
    return [(0, len(header), domain), (len(header), middle, "qa"), (middle, end, domain)]


def _example(seed: int, split: str, index: int, n_facts: int) -> TaskExample:
    rng = _rng(seed, split, index)
    heldout = split in HELDOUT_SPLITS
    while True:
        context, question, key, value = _draw(rng, n_facts)
        if is_heldout(context, question) == heldout:
            break
    domain = domain_of(index)
    answer = render_answer(value, domain)
    header, retrieval, cue = _parts(context, question, domain)
    target = f" {answer}\n"  # Task.target's convention
    return TaskExample(
        f"{split}-{seed}-{index:05d}",
        header + retrieval + cue,
        (answer,),
        {
            "domain": domain,
            "domain_spans": _spans(header, retrieval, cue + target, domain),
            "context": context,
            "question": question,
            "key": key,
            "value": value,
        },
    )


# ---------------------------------------------------------------- sizes and chunk labels


def length_bounds(n_facts: int) -> tuple[int, int]:
    """(fewest, most) tokens of prompt + target + EOS over every example `n_facts` can produce,
    with the byte tokenizer (one token per ASCII character); keys always have 3 letters."""
    shortest = min(_A_NOUNS, key=len)
    longest = " ".join(
        (*sorted(_A_ADJECTIVES, key=len)[-MAX_ADJECTIVES_PER_NOUN:], max(_A_NOUNS, key=len))
    )

    def size(value: str, domain: str) -> int:
        context = "; ".join([f"abc: {value}"] * n_facts)
        prompt = "".join(_parts(context, "what is abc?", domain))
        return len(prompt) + len(f" {render_answer(value, domain)}\n") + 1

    return min(size(shortest, d) for d in DOMAINS), max(size(longest, d) for d in DOMAINS)


def fact_range(max_tokens: int = MAX_TOKENS) -> range:
    """The n_facts values whose examples all fit `max_tokens` and span at least MIN_CHUNKS."""
    fits = []
    for n in range(1, max_tokens):
        fewest, most = length_bounds(n)
        if fewest > (MIN_CHUNKS - 1) * CHUNK_SIZE and most <= max_tokens:
            fits.append(n)
    return range(fits[0], fits[-1] + 1) if fits else range(0)


def chunk_domains(example: TaskExample, chunk_size: int = CHUNK_SIZE) -> list[tuple[str, ...]]:
    """The domains (in text order) that overlap each `chunk_size`-token chunk of prompt+target.

    Offsets are characters and the text is ASCII, so with the byte tokenizer a chunk of tokens
    is the same range of characters; an oracle uses this to know which experts a chunk needs.
    """
    spans = example.features["domain_spans"]
    end = spans[-1][1]
    labels = []
    for start in range(0, end, chunk_size):
        stop = min(start + chunk_size, end)
        labels.append(tuple(d for s, e, d in spans if s < stop and e > start))
    return labels


def domain_subset(examples: Sequence[TaskExample], domain: str) -> list[TaskExample]:
    """The examples of one output domain, e.g. to train that domain's expert adapter."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r} (known: {', '.join(DOMAINS)})")
    return [ex for ex in examples if ex.features["domain"] == domain]


# ---------------------------------------------------------------- the Task


class MixedDomainTask(Task):
    """Retrieval QA whose answer format (plain, JSON, translated) varies per example."""

    name = "synthetic_mixed"
    metrics = MIXED_METRICS

    def __init__(self, n_facts: int = 4) -> None:
        allowed = fact_range()
        if n_facts not in allowed:
            raise BemctlError(
                f"synthetic_mixed: n_facts must be in {allowed.start}..{allowed.stop - 1} so "
                f"prompt + answer spans {MIN_CHUNKS}-{MAX_TOKENS // CHUNK_SIZE} chunks of "
                f"{CHUNK_SIZE} tokens (got {n_facts})"
            )
        self.n_facts = n_facts

    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        """Train and eval streams from disjoint halves; eval also skips anything in train."""
        return disjoint_splits(
            lambda split, i: _example(seed, split, i, self.n_facts),
            n_train,
            n_eval,
            lambda ex: (ex.features["context"], ex.features["question"]),
        )

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        self.metric(metric)  # KeyError naming the known metrics
        if metric == "format_validity":
            return float(format_valid(prediction, example.features["domain"]))
        return METRICS[metric](prediction, example.references)
