"""Synthetic structured output: turn a "key: value; ..." description into one line of JSON.

    name: otter; age: 7; tags: red fox; active: yes
    JSON: {"name": "otter", "age": 7, "tags": ["red", "fox"], "active": true}

Why this task: V4's claim is format control, so the metrics measure format first. `validity`
asks whether the output is a JSON object with every required key of the right type;
`field_exact_match` gives partial credit per correct field. Each example carries its schema
(`features["schema"]`: key -> type) and expected values (`features["expected"]`).

Parsing is deliberately strict, because "valid" must mean valid to any consumer: duplicate keys
(which parsers resolve differently), NaN/Infinity (not JSON), non-finite numbers, trailing
garbage and non-object top levels are all invalid; `true` is not an integer and `1` is not a
boolean even though Python says `True == 1`. Extra keys are allowed (a schema lists what is
required, not what is forbidden).

Splits and pre-training documents follow `engine.tasks.qa`: per-example SHA-256-seeded RNGs
and a hash half-split of the description space, so no training item can be an eval item.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any

from engine.tasks.base import MetricSpec, Task, TaskExample, disjoint_splits

HELDOUT_SPLITS: frozenset[str] = frozenset({"eval", "test"})

ANIMALS = ("otter", "fox", "owl", "cat", "dog", "bear", "wolf", "frog", "hawk", "mole", "lynx")
COLORS = ("red", "blue", "green", "pink", "gold", "gray", "black", "white", "brown", "teal")
CITIES = ("oslo", "lima", "rome", "kyiv", "bern", "nice", "riga", "baku", "doha", "cork")
TAGS = ("red", "fox", "fast", "old", "new", "big", "wild", "calm", "shy", "loud", "rare")

# JSON types of the schema and how a parsed value is checked against them; bool is an int
# subclass in Python, so integers must exclude it explicitly.
TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string_list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}
FIELD_TYPES: dict[str, str] = {
    "name": "string",
    "color": "string",
    "city": "string",
    "age": "integer",
    "count": "integer",
    "tags": "string_list",
    "active": "boolean",
}
MIN_FIELDS, MAX_FIELDS = 3, 5


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"structured:{seed}:{split}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def is_heldout(description: str) -> bool:
    """Which half of the description space an item lives in; stable and ~50/50."""
    return hashlib.sha256(f"structured\x00{description}".encode()).digest()[0] % 2 == 1


def _value(rng: random.Random, key: str) -> Any:
    if key == "name":
        return rng.choice(ANIMALS)
    if key == "color":
        return rng.choice(COLORS)
    if key == "city":
        return rng.choice(CITIES)
    if key == "age":
        return rng.randint(1, 99)
    if key == "count":
        return rng.randint(0, 999)
    if key == "tags":
        return rng.sample(TAGS, rng.randint(1, 3))
    if key == "active":
        return rng.random() < 0.5
    raise KeyError(key)


def describe(fields: dict[str, Any]) -> str:
    """The natural-ish description: lists space-separated, booleans as yes/no."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list):
            text = " ".join(value)
        else:
            text = str(value)
        parts.append(f"{key}: {text}")
    return "; ".join(parts)


def render(fields: dict[str, Any]) -> str:
    """The reference: one line, keys in description order, json.dumps's default spacing."""
    return json.dumps(fields, ensure_ascii=False)


def _draw(rng: random.Random) -> dict[str, Any]:
    keys = rng.sample(sorted(FIELD_TYPES), rng.randint(MIN_FIELDS, MAX_FIELDS))
    return {key: _value(rng, key) for key in keys}


def _fields(seed: int, split: str, index: int) -> dict[str, Any]:
    rng = _rng(seed, split, index)
    heldout = split in HELDOUT_SPLITS
    while True:
        fields = _draw(rng)
        if is_heldout(describe(fields)) == heldout:
            return fields


def format_prompt(description: str) -> str:
    return f"{description}\nJSON:"


def _example(seed: int, split: str, index: int) -> TaskExample:
    fields = _fields(seed, split, index)
    description = describe(fields)
    schema = {key: FIELD_TYPES[key] for key in fields}
    return TaskExample(
        f"{split}-{seed}-{index:05d}",
        format_prompt(description),
        (render(fields),),
        {"description": description, "schema": schema, "expected": fields},
    )


# ---------------------------------------------------------------- strict parsing and scoring


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a double")
    return value


def parse_object(text: str) -> dict[str, Any] | None:
    """The JSON object `text` holds, or None if it is not exactly one strict JSON object."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


def conforms(obj: dict[str, Any], schema: dict[str, str]) -> bool:
    """Every required key is present with a value of its schema type (extra keys allowed)."""
    return all(key in obj and TYPE_CHECKS[kind](obj[key]) for key, kind in schema.items())


def same_value(a: Any, b: Any) -> bool:
    """Equality that respects JSON types (Python's `True == 1` and `1 == 1.0` do not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def validity(prediction: str, schema: dict[str, str]) -> float:
    obj = parse_object(prediction)
    return float(obj is not None and conforms(obj, schema))


def field_exact_match(prediction: str, expected: dict[str, Any]) -> float:
    """Fraction of required fields whose predicted value equals the reference value."""
    obj = parse_object(prediction)
    if obj is None or not expected:
        return 0.0
    hits = sum(key in obj and same_value(obj[key], value) for key, value in expected.items())
    return hits / len(expected)


class StructuredOutputTask(Task):
    name = "synthetic_json"
    metrics = (MetricSpec("validity"), MetricSpec("field_exact_match"))

    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        """Train and eval streams from disjoint halves; eval also skips anything in train."""
        return disjoint_splits(
            lambda split, i: _example(seed, split, i),
            n_train,
            n_eval,
            lambda ex: ex.features["description"],
        )

    def pretraining_corpus(self, n_docs: int, seed: int, items_per_doc: int = 3) -> list[str]:
        """Documents of `items_per_doc` prompt+target pairs, all from the training half."""
        docs = []
        for d in range(n_docs):
            lines = []
            for k in range(items_per_doc):
                fields = _fields(seed, "pretrain", d * items_per_doc + k)
                lines.append(f"{format_prompt(describe(fields))} {render(fields)}\n")
            docs.append("".join(lines))
        return docs

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        self.metric(metric)  # KeyError naming the known metrics
        if metric == "validity":
            return validity(prediction, example.features["schema"])
        return field_exact_match(prediction, example.features["expected"])
