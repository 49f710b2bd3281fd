"""Retrieval QA task: determinism, disjoint halves, prompt shape and length, relevant passage."""

import re
from collections import Counter

import pytest

from engine.models.base_model import embedded_config_dict
from engine.models.tokenizer import ByteTokenizer
from engine.tasks.qa import VALUES
from engine.tasks.retrieval_qa import RetrievalQATask, draw_item, is_heldout
from store.errors import BemctlError

PASSAGE = re.compile(r"^\[(\d+)\] (.+)$")
FACT = re.compile(r"^([a-z]{3}): ([a-z]+)$")
PINNED_PROMPT = (
    "[1] dsp: fig; jjd: grape\n[2] rki: rice; jjv: peach\n[3] mdt: lemon; fxu: grape\n"
    "[4] ivb: apple; rlm: white\nQ: what is jjd?\nA:"
)


def parse(prompt: str) -> tuple[list[list[tuple[str, str]]], str]:
    """(facts of each passage in order, asked key); asserts the prompt's exact shape."""
    *passages, question, cue = prompt.split("\n")
    assert cue == "A:"
    asked = re.fullmatch(r"Q: what is ([a-z]{3})\?", question)
    assert asked
    parsed = []
    for number, line in enumerate(passages, start=1):
        match = PASSAGE.match(line)
        assert match and int(match.group(1)) == number, line
        facts = [FACT.match(f) for f in match.group(2).split("; ")]
        assert all(facts), line
        parsed.append([(f.group(1), f.group(2)) for f in facts if f])
    return parsed, asked.group(1)


def test_splits_are_deterministic_and_seed_sensitive() -> None:
    task = RetrievalQATask()
    a = task.make_splits(40, 20, seed=1)
    b = task.make_splits(40, 20, seed=1)
    assert [(e.id, e.prompt, e.references, e.features) for e in a[0] + a[1]] == [
        (e.id, e.prompt, e.references, e.features) for e in b[0] + b[1]
    ]
    other = task.make_splits(40, 20, seed=2)
    assert {e.prompt for e in a[0]}.isdisjoint({e.prompt for e in other[0]})
    # a longer stream starts with the shorter one: examples are drawn independently
    longer = task.make_splits(60, 0, seed=1)[0]
    assert [e.prompt for e in longer[:40]] == [e.prompt for e in a[0]]


def test_pinned_first_example() -> None:
    # any change to the generator silently changes every stored result; catch it here
    ex = RetrievalQATask().make_splits(1, 0, seed=0)[0][0]
    assert ex.id == "train-0-00000"
    assert ex.prompt == PINNED_PROMPT
    assert ex.references == ("grape",)
    assert ex.features == {"relevant_passage": 0, "n_passages": 4}


def test_train_and_eval_are_disjoint_halves() -> None:
    task = RetrievalQATask()
    train, evals = task.make_splits(300, 150, seed=3)
    assert len(train) == 300 and len(evals) == 150
    assert {e.prompt for e in train}.isdisjoint({e.prompt for e in evals})
    assert len({e.id for e in train + evals}) == 450
    for ex, heldout in [(e, False) for e in train] + [(e, True) for e in evals]:
        context, question = ex.prompt.rsplit("\nQ: ", 1)
        assert is_heldout(context, question.removesuffix("\nA:")) == heldout


def test_pretraining_corpus_holds_only_training_half_items() -> None:
    task = RetrievalQATask()
    docs = task.pretraining_corpus(60, seed=3)
    assert len(docs) == 60 and docs == task.pretraining_corpus(60, seed=3)
    _, evals = task.make_splits(0, 300, seed=3)
    eval_items = {e.prompt.removesuffix("\nA:") for e in evals}
    n_questions = 0
    for doc in docs:
        lines = doc.rstrip("\n").split("\n")
        context = "\n".join(lines[:4])
        facts = dict(
            fact for passage in parse(context + "\nQ: what is abc?\nA:")[0] for fact in passage
        )
        for q_line, a_line in zip(lines[4::2], lines[5::2], strict=True):
            key = re.fullmatch(r"Q: what is ([a-z]{3})\?", q_line).group(1)
            assert a_line == f"A: {facts[key]}"
            assert not is_heldout(context, f"what is {key}?")
            assert f"{context}\n{q_line}" not in eval_items
            n_questions += 1
    assert n_questions > 60 * 8 * 0.3  # roughly half of the 8 keys per document survive


def test_relevant_passage_holds_the_answer_and_distractors_have_its_shape() -> None:
    task = RetrievalQATask()
    train, evals = task.make_splits(200, 100, seed=5)
    positions = Counter()
    for ex in train + evals:
        passages, key = parse(ex.prompt)
        assert len(passages) == 4 and all(len(p) == 2 for p in passages)
        keys = [k for p in passages for k, _ in p]
        assert len(set(keys)) == 8 and all(v in VALUES for p in passages for _, v in p)
        r = ex.features["relevant_passage"]
        assert ex.features == {"relevant_passage": r, "n_passages": 4}
        assert (key, ex.references[0]) in passages[r]
        assert all(key not in dict(p) for i, p in enumerate(passages) if i != r)
        # one distractor key is a near miss: one letter changed
        near = [
            k
            for i, p in enumerate(passages)
            if i != r
            for k, _ in p
            if sum(a != b for a, b in zip(k, key, strict=True)) == 1
        ]
        assert near
        assert task.target(ex) == f" {ex.references[0]}\n"
        positions[r] += 1
    assert set(positions) == {0, 1, 2, 3} and min(positions.values()) > 40


def test_prompts_fit_the_embedded_model_with_room_to_spare() -> None:
    task = RetrievalQATask()
    tokenizer = ByteTokenizer()
    train, evals = task.make_splits(200, 100, seed=0)
    lengths = [len(tokenizer.encode(e.prompt)) for e in train + evals]
    assert sum(lengths) / len(lengths) < 200 and max(lengths) < 200
    longest = max(len(tokenizer.encode(e.prompt + task.target(e))) + 1 for e in train + evals)
    assert longest < embedded_config_dict()["n_positions"]


def test_other_sizes_and_scoring() -> None:
    task = RetrievalQATask(n_passages=3, facts_per_passage=3)
    ex = task.make_splits(1, 0, seed=0)[0][0]
    passages, _ = parse(ex.prompt)
    assert len(passages) == 3 and all(len(p) == 3 for p in passages)
    assert ex.features["n_passages"] == 3
    assert task.score_example("exact_match", f"The {ex.references[0]}.", ex) == 1.0
    assert task.score_example("f1", f"{ex.references[0]} tree", ex) == pytest.approx(2 / 3)
    assert [m.name for m in task.metrics] == ["exact_match", "f1"]
    assert not any(m.corpus_level for m in task.metrics)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(BemctlError, match="n_passages"):
        RetrievalQATask(n_passages=1)
    with pytest.raises(BemctlError, match="facts_per_passage"):
        RetrievalQATask(facts_per_passage=0)
    with pytest.raises(ValueError):
        draw_item(0, "train", 0, n_passages=1)
