"""A drifting stream of key:value QA batches, deterministic from a seed.

The deployed adapter was trained on the *history* part; the *live* part is what it serves
afterwards, and the world changes along it, in three ways a deployed model meets in practice:

- the mix of question forms shifts ("what is abc?" gives way to "abc = ?", "tell me abc.");
- new keys appear (four letters instead of three), so look-ups meet unseen strings;
- facts are updated: a key is restated later in the context with a new value, and the answer
  is the latest one (the history never restates a key, so "copy the value after the key" is
  no longer the whole rule).

Every example comes from its own `random.Random`, seeded by a SHA-256 of its position, so any
batch can be regenerated alone (a resumed stream re-reads exactly the batches it skipped).
The forgetting set is drawn from the history's world, from the half of the item space that
the history and the live stream never use, so no arm ever trains on it.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

from engine.tasks.base import TaskExample
from engine.tasks.qa import VALUES

_EXCLUDED_KEYS = frozenset(VALUES)


@dataclass(frozen=True)
class WorldPhase:
    """How the key:value world looks over one stretch of the stream."""

    name: str
    question_forms: tuple[str, ...]  # templates with {key}, drawn uniformly
    n_facts: int = 4
    key_letters: int = 3
    update_share: float = 0.0  # share of examples whose asked key is restated with a new value

    def __post_init__(self) -> None:
        if not self.question_forms or any("{key}" not in f for f in self.question_forms):
            raise ValueError(f"phase {self.name!r}: every question form needs a {{key}} slot")
        if self.n_facts < 1 or self.key_letters < 1 or not 0.0 <= self.update_share <= 1.0:
            raise ValueError(f"phase {self.name!r}: n_facts, key_letters >= 1, update_share 0..1")


HISTORY = WorldPhase("history", ("what is {key}?",))
LIVE_PHASES = (
    WorldPhase("live-1 forms mix", ("what is {key}?", "what is the value of {key}?")),
    WorldPhase(
        "live-2 new keys, updates",
        ("what is {key}?", "what is the value of {key}?"),
        key_letters=4,
        update_share=0.3,
    ),
    WorldPhase(
        "live-3 new forms",
        ("{key} = ?", "tell me {key}.", "what is the value of {key}?"),
        key_letters=4,
        update_share=0.5,
    ),
)


@dataclass(frozen=True)
class StreamBatch:
    index: int  # position in the whole stream (history first)
    part: str  # "history" or "live"
    phase: str
    examples: tuple[TaskExample, ...]


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _in_forgetting_half(context: str, question: str) -> bool:
    """Which half of the item space an item lives in (stable, ~50/50): the forgetting set
    uses one half, everything any arm trains on the other."""
    return hashlib.sha256(f"ol\x00{context}\x00{question}".encode()).digest()[0] % 2 == 1


def _item(rng: random.Random, phase: WorldPhase) -> tuple[str, str, str, bool]:
    keys: list[str] = []
    while len(keys) < phase.n_facts:
        key = "".join(rng.choice(string.ascii_lowercase) for _ in range(phase.key_letters))
        if key not in keys and key not in _EXCLUDED_KEYS:
            keys.append(key)
    facts = [(k, rng.choice(VALUES)) for k in keys]
    target = rng.randrange(phase.n_facts)
    key, answer = facts[target]
    updated = rng.random() < phase.update_share
    if updated:
        answer = rng.choice([v for v in VALUES if v != answer])
        facts.append((key, answer))  # restated last: the latest value is the answer
    context = "; ".join(f"{k}: {v}" for k, v in facts)
    question = rng.choice(phase.question_forms).format(key=key)
    return context, question, answer, updated


def _example(seed: int, split: str, index: int, phase: WorldPhase, forgetting: bool) -> TaskExample:
    rng = _rng(seed, split, index)
    while True:
        context, question, answer, updated = _item(rng, phase)
        if _in_forgetting_half(context, question) == forgetting:
            return TaskExample(
                f"{split}-{seed}-{index:06d}",
                f"{context}\nQ: {question}\nA:",
                (answer,),
                {"context": context, "question": question, "phase": phase.name,
                 "updated": updated},
            )  # fmt: skip


def live_phase(live_index: int, live_batches: int) -> WorldPhase:
    """The phase of live batch `live_index`: the live part is split in equal thirds."""
    if not 0 <= live_index < live_batches:
        raise ValueError(f"live batch {live_index} outside 0..{live_batches - 1}")
    return LIVE_PHASES[min(len(LIVE_PHASES) - 1, live_index * len(LIVE_PHASES) // live_batches)]


def stream_batch(
    seed: int, index: int, *, history_batches: int, live_batches: int, batch_size: int
) -> StreamBatch:
    """Batch `index` of the stream (0 .. history_batches + live_batches - 1), alone."""
    total = history_batches + live_batches
    if not 0 <= index < total or batch_size < 1:
        raise ValueError(f"batch {index} outside 0..{total - 1} (or batch_size < 1)")
    if index < history_batches:
        part, phase = "history", HISTORY
    else:
        part, phase = "live", live_phase(index - history_batches, live_batches)
    examples = tuple(
        _example(seed, f"stream{index:04d}", i, phase, forgetting=False) for i in range(batch_size)
    )
    return StreamBatch(index, part, phase.name, examples)


def forgetting_set(seed: int, n: int) -> list[TaskExample]:
    """`n` held-out examples of the history's world: what forgetting is measured on."""
    return [_example(seed, "forget", i, HISTORY, forgetting=True) for i in range(n)]
