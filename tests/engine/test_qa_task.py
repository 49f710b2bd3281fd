import re

import pytest

from engine.tasks.qa import (
    VALUES,
    QAExample,
    format_prompt,
    format_target,
    generate_qa,
    make_qa_splits,
    pretraining_corpus,
)

FACT = re.compile(r"^([a-z]{3}): ([a-z]+)$")
PINNED = ("wkb: black; gew: kiwi; ffe: grape; umf: apple", "what is ffe?", ("grape",))


def test_deterministic_and_seed_sensitive() -> None:
    a = generate_qa(50, seed=1, split="train")
    assert a == generate_qa(50, seed=1, split="train")
    assert a != generate_qa(50, seed=2, split="train")
    assert a != generate_qa(50, seed=1, split="eval")
    # A prefix of a longer stream is the shorter stream: examples are generated independently.
    assert generate_qa(80, seed=1, split="train")[:50] == a


def test_pinned_example() -> None:
    # hashlib seeding means this holds in every process; pinned so that any change to the
    # generator (which would silently change every stored result) is caught.
    ex = generate_qa(1, seed=0, split="train")[0]
    assert ex.id == "train-0-00000"
    assert (ex.context, ex.question, ex.answers) == PINNED


@pytest.mark.parametrize("n", [0, 1, 37])
def test_exact_count_and_ids(n: int) -> None:
    exs = generate_qa(n, seed=7, split="dev")
    assert len(exs) == n
    assert [e.id for e in exs] == [f"dev-7-{i:05d}" for i in range(n)]


@pytest.mark.parametrize("n_facts", [1, 4, 6])
def test_example_structure(n_facts: int) -> None:
    for ex in generate_qa(100, seed=3, split="train", n_facts=n_facts):
        assert isinstance(ex, QAExample)
        facts = ex.context.split("; ")
        assert len(facts) == n_facts
        parsed = [FACT.match(f) for f in facts]
        assert all(parsed)
        keys = [m.group(1) for m in parsed if m]
        assert len(set(keys)) == n_facts
        assert all(m.group(2) in VALUES for m in parsed if m)
        key = re.fullmatch(r"what is ([a-z]{3})\?", ex.question)
        assert key and key.group(1) in keys
        assert len(ex.answers) == 1
        assert f"{key.group(1)}: {ex.answers[0]}" in facts


def test_uses_varied_values_and_positions() -> None:
    exs = generate_qa(300, seed=5, split="train")
    assert len({ex.answers[0] for ex in exs}) > 30
    positions = {
        ex.context.split("; ").index(f"{ex.question[8:11]}: {ex.answers[0]}") for ex in exs
    }
    assert positions == {0, 1, 2, 3}


def test_values_list() -> None:
    assert 35 <= len(VALUES) <= 45
    assert len(set(VALUES)) == len(VALUES)


def test_prompt_and_target_format_and_length() -> None:
    ex = QAExample("x", "abc: red; def: owl", "what is def?", ("owl",))
    assert format_prompt(ex) == "abc: red; def: owl\nQ: what is def?\nA:"
    assert format_target("owl") == " owl\n"
    lengths = [len(format_prompt(e).encode()) for e in generate_qa(500, seed=11, split="train")]
    assert max(lengths) < 100


def test_splits_sizes_disjoint_and_deterministic() -> None:
    train, evals = make_qa_splits(400, 150, seed=9)
    assert len(train) == 400 and len(evals) == 150
    train_items = {(e.context, e.question) for e in train}
    assert not train_items & {(e.context, e.question) for e in evals}
    assert len({e.id for e in train} | {e.id for e in evals}) == 550
    assert make_qa_splits(400, 150, seed=9) == (train, evals)
    assert make_qa_splits(400, 150, seed=10) != (train, evals)


def test_splits_disjoint_with_tiny_item_space() -> None:
    # One fact per context makes collisions likely in principle; eval must still be exact size.
    train, evals = make_qa_splits(300, 300, seed=1, n_facts=1)
    assert len(evals) == 300
    assert not {(e.context, e.question) for e in train} & {(e.context, e.question) for e in evals}


def test_pretraining_corpus_never_contains_eval() -> None:
    seed = 4
    corpus = pretraining_corpus(2000, seed)
    assert len(corpus) == 2000
    assert corpus == pretraining_corpus(2000, seed)
    _, evals = make_qa_splits(200, 500, seed)
    pairs = set()
    for doc in corpus:
        assert re.fullmatch(r"[a-z:; ]+\n(Q: what is [a-z]{3}\?\nA: [a-z]+\n)+", doc), doc
        context, *rest = doc.rstrip("\n").split("\n")
        questions = [line[len("Q: ") :] for line in rest if line.startswith("Q: ")]
        answers = [line[len("A: ") :] for line in rest if line.startswith("A: ")]
        facts = dict(fact.split(": ", 1) for fact in context.split("; "))
        for question, answer in zip(questions, answers, strict=True):
            assert facts[question[len("what is ") : -1]] == answer  # every answer is right
            pairs.add((context, question))
    for ex in evals:
        assert (ex.context, ex.question) not in pairs


def test_eval_collisions_are_dropped_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # Collisions are vanishingly rare by construction, so force one to exercise the drop path.
    from engine.tasks import qa

    real = qa._example
    clash = real(9, "train", 1, 4)

    def fake(seed: int, split: str, index: int, n_facts: int) -> QAExample:
        if split == "eval" and index == 2:
            return QAExample("eval-9-00002", clash.context, clash.question, clash.answers)
        return real(seed, split, index, n_facts)

    monkeypatch.setattr(qa, "_example", fake)
    train, evals = qa.make_qa_splits(5, 4, seed=9)
    assert len(evals) == 4
    assert [e.id for e in evals] == ["eval-9-00000", "eval-9-00001", "eval-9-00003", "eval-9-00004"]
