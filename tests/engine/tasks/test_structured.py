"""Synthetic JSON output: format, determinism, disjoint splits, and the strict scorers."""

import json

import pytest

from engine.tasks.structured import (
    FIELD_TYPES,
    StructuredOutputTask,
    describe,
    field_exact_match,
    is_heldout,
    parse_object,
    validity,
)

TASK = StructuredOutputTask()
SCHEMA = {"name": "string", "age": "integer", "tags": "string_list", "active": "boolean"}
EXPECTED = {"name": "otter", "age": 7, "tags": ["red", "fox"], "active": True}
GOOD = '{"name": "otter", "age": 7, "tags": ["red", "fox"], "active": true}'


def test_example_format_matches_the_issue() -> None:
    fields = {"name": "otter", "age": 7, "tags": ["red", "fox"]}
    assert describe(fields) == "name: otter; age: 7; tags: red fox"
    train, _ = TASK.make_splits(300, 0, seed=0)
    sizes = set()
    for ex in train:
        assert ex.prompt == f"{ex.features['description']}\nJSON:"
        assert TASK.target(ex) == f" {ex.references[0]}\n"
        assert "\n" not in ex.references[0]
        expected = ex.features["expected"]
        assert json.loads(ex.references[0]) == expected
        assert list(ex.features["schema"]) == list(expected)  # description order
        assert ex.features["schema"] == {k: FIELD_TYPES[k] for k in expected}
        assert describe(expected) == ex.features["description"]
        # the reference itself is valid and fully correct
        assert TASK.score_example("validity", ex.references[0], ex) == 1.0
        assert TASK.score_example("field_exact_match", ex.references[0], ex) == 1.0
        sizes.add(len(expected))
    assert sizes == {3, 4, 5}
    assert {t for ex in train for t in ex.features["schema"].values()} == set(FIELD_TYPES.values())


def test_splits_are_deterministic_disjoint_and_pretraining_is_train_half() -> None:
    a_train, a_eval = TASK.make_splits(400, 150, seed=1)
    b_train, b_eval = StructuredOutputTask().make_splits(400, 150, seed=1)
    assert [(e.id, e.prompt, e.references) for e in a_train + a_eval] == [
        (e.id, e.prompt, e.references) for e in b_train + b_eval
    ]
    assert [e.prompt for e in TASK.make_splits(400, 0, seed=2)[0]] != [e.prompt for e in a_train]
    train_d = {e.features["description"] for e in a_train}
    eval_d = {e.features["description"] for e in a_eval}
    assert not train_d & eval_d
    assert all(is_heldout(d) for d in eval_d) and not any(is_heldout(d) for d in train_d)
    docs = TASK.pretraining_corpus(50, seed=1)
    assert docs == TASK.pretraining_corpus(50, seed=1)
    lines = [line for doc in docs for line in doc.splitlines()]
    descriptions, answers = lines[::2], lines[1::2]
    assert len(descriptions) == 150
    assert not any(is_heldout(d) for d in descriptions) and not set(descriptions) & eval_d
    for answer in answers:
        assert answer.startswith("JSON: {") and parse_object(answer.removeprefix("JSON: "))


# ---------------------------------------------------------------- validity


@pytest.mark.parametrize(
    "prediction",
    [
        GOOD,
        '  {"active": true, "tags": ["red", "fox"], "age": 7, "name": "otter"}  ',  # any order
        '{"name": "otter", "age": 7, "tags": ["red", "fox"], "active": true, "extra": {"a": [1]}}',
        '{"name": "ötter 🦦", "age": -3, "tags": [], "active": false}',  # unicode, wrong values
        '{"name": "\\u00f6tter", "age": 7, "tags": ["r"], "active": false}',  # escapes
        '{"name": "' + "x" * 100_000 + '", "age": 7, "tags": ["a"], "active": true}',
        '{"name": "otter", "age": 12345678901234567890, "tags": ["a"], "active": true}',
        '{\n"name":"otter","age":7,"tags":["red"],"active":false}',
    ],
)
def test_valid_outputs(prediction: str) -> None:
    assert validity(prediction, SCHEMA) == 1.0


@pytest.mark.parametrize(
    "prediction",
    [
        "",
        "not json",
        GOOD + " trailing garbage",
        GOOD + "}",
        GOOD + GOOD,
        GOOD[:-1],  # truncated
        '{"name": "otter", "name": "owl", "age": 7, "tags": ["a"], "active": true}',  # dup key
        '{"name": "otter", "age": "7", "tags": ["a"], "active": true}',  # int as string
        '{"name": "otter", "age": 7.0, "tags": ["a"], "active": true}',  # int as float
        '{"name": "otter", "age": true, "tags": ["a"], "active": true}',  # bool as int
        '{"name": "otter", "age": 7, "tags": ["a"], "active": 1}',  # int as bool
        '{"name": "otter", "age": NaN, "tags": ["a"], "active": true}',
        '{"name": "otter", "age": 7, "tags": ["a"], "active": true, "x": Infinity}',
        '{"name": "otter", "age": 7, "tags": ["a"], "active": true, "x": -1e400}',
        '{"name": "otter", "age": 7, "tags": "red fox", "active": true}',  # list as string
        '{"name": "otter", "age": 7, "tags": ["red", 3], "active": true}',  # mixed list
        '{"name": {"first": "otter"}, "age": 7, "tags": ["a"], "active": true}',  # nested
        '{"name": null, "age": 7, "tags": ["a"], "active": true}',
        '{"name": "otter", "age": 7, "tags": ["a"]}',  # missing key
        '{"nаme": "otter", "age": 7, "tags": ["a"], "active": true}',  # Cyrillic а in key
        '[{"name": "otter", "age": 7, "tags": ["a"], "active": true}]',  # array
        '"{\\"name\\": \\"otter\\"}"',  # a JSON string holding an object
        "{'name': 'otter', 'age': 7, 'tags': ['a'], 'active': True}",  # Python, not JSON
        '{"name": "otter", "age": 7, "tags": ["a"], "active": true,}',  # trailing comma
        '{"name": "ot\tter", "age": 7, "tags": ["a"], "active": true}',  # raw control char
        "[" * 100_000 + "]" * 100_000,  # nesting deeper than the parser's recursion limit
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
        "1" * 5000,  # an integer too long to parse
    ],
)
def test_invalid_outputs(prediction: str) -> None:
    assert validity(prediction, SCHEMA) == 0.0


def test_validity_with_an_empty_schema_only_needs_an_object() -> None:
    assert validity("{}", {}) == 1.0
    assert validity("[]", {}) == 0.0


# ---------------------------------------------------------------- field exact match


@pytest.mark.parametrize(
    "prediction, score",
    [
        (GOOD, 1.0),
        ('{"name": "otter", "age": 8, "tags": ["red", "fox"], "active": true}', 0.75),
        ('{"name": "otter", "age": 7, "tags": ["fox", "red"], "active": true}', 0.75),  # order
        ('{"name": "otter", "age": 7.0, "tags": ["red", "fox"], "active": 1}', 0.5),  # types
        ('{"name": "otter", "extra": 1}', 0.25),
        ('{"name": "Otter", "age": 7}', 0.25),
        ("{}", 0.0),
        (GOOD + " x", 0.0),  # unparseable: no credit
        ('{"name": "otter", "name": "otter", "age": 7}', 0.0),  # duplicate keys: no credit
    ],
)
def test_field_exact_match(prediction: str, score: float) -> None:
    assert field_exact_match(prediction, EXPECTED) == pytest.approx(score)


def test_scores_go_through_the_task_interface() -> None:
    ex = TASK.make_splits(1, 0, seed=0)[0][0]
    assert [m.name for m in TASK.metrics] == ["validity", "field_exact_match"]
    assert not any(m.corpus_level for m in TASK.metrics)
    assert TASK.score_example("validity", "nope", ex) == 0.0
    with pytest.raises(KeyError, match="known: validity, field_exact_match"):
        TASK.score_example("exact_match", ex.references[0], ex)
    with pytest.raises(NotImplementedError):
        TASK.corpus_stats("validity", ex.references[0], ex)
