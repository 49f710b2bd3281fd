"""Mixed-domain task: format, determinism, disjoint balanced splits, lengths, spans, metrics."""

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine.models.tokenizer import ByteTokenizer
from engine.spec import load_spec, spec_errors
from engine.tasks.mixed import (
    CHUNK_SIZE,
    DOMAINS,
    MAX_TOKENS,
    MIN_NEW_TOKENS,
    MixedDomainTask,
    chunk_domains,
    domain_subset,
    fact_range,
    format_valid,
    is_heldout,
    length_bounds,
    render_answer,
    transduce,
)
from engine.tasks.registry import TASK_METRICS, build_task
from engine.tasks.translation import LEXICON, translate
from engine.training import encode_example
from store.errors import BemctlError

TASK = MixedDomainTask()
TRAIN, EVAL = TASK.make_splits(600, 300, seed=0)
WORDS = {"qa": "plain", "json": "json", "transduce": "translated"}
CUES = {"qa": "A:", "json": "JSON:", "transduce": "=>"}
EXPERIMENTS = Path(__file__).resolve().parents[3] / "experiments"


def _text(ex) -> str:
    return ex.prompt + TASK.target(ex)


def test_examples_have_the_documented_format() -> None:
    for ex in TRAIN + EVAL:
        f = ex.features
        domain, value = f["domain"], f["value"]
        assert ex.prompt == (
            f"reply: {WORDS[domain]}\n{f['context']}\nQ: {f['question']}\n{CUES[domain]}"
        )
        assert f["question"] == f"what is {f['key']}?"
        assert f"{f['key']}: {value}" in f["context"].split("; ")
        assert ex.references == (render_answer(value, domain),)
        assert TASK.target(ex) == f" {ex.references[0]}\n"
        assert _text(ex).isascii()  # char offsets are byte-token offsets
    by_domain = {ex.features["domain"]: ex for ex in TRAIN[:3]}
    value = by_domain["json"].features["value"]
    assert json.loads(by_domain["json"].references[0]) == {"answer": value}
    assert by_domain["qa"].references[0] == by_domain["qa"].features["value"]
    assert by_domain["transduce"].references[0] == transduce(
        by_domain["transduce"].features["value"]
    )


def test_transduction_is_translations_noun_phrase_rule() -> None:
    assert transduce("zeli kuma kalo") == "brox olv ist"
    for subject, verb, obj in [("kalo", "sovat", "nori miru"), ("bela tavi doma", "lutan", "peko")]:
        expected = f"{transduce(subject)} {transduce(obj)} {LEXICON[verb]}"
        assert translate(f"{subject} {verb} {obj}") == expected
    for bad in ("", "kalo zeli", "brox", "zeli kuma nori kalo", "red"):
        with pytest.raises(ValueError):
            transduce(bad)


def test_splits_are_deterministic_and_seed_dependent() -> None:
    again_train, again_eval = MixedDomainTask().make_splits(600, 300, seed=0)
    rows = [(e.id, e.prompt, e.references, e.features) for e in TRAIN + EVAL]
    assert rows == [(e.id, e.prompt, e.references, e.features) for e in again_train + again_eval]
    other = MixedDomainTask().make_splits(600, 0, seed=1)[0]
    assert [e.prompt for e in other] != [e.prompt for e in TRAIN]


def test_train_and_eval_are_disjoint_halves() -> None:
    def item(ex):
        return ex.features["context"], ex.features["question"]

    assert not {item(e) for e in TRAIN} & {item(e) for e in EVAL}
    assert all(is_heldout(*item(e)) for e in EVAL)
    assert not any(is_heldout(*item(e)) for e in TRAIN)
    assert len({e.id for e in TRAIN + EVAL}) == len(TRAIN) + len(EVAL)


def test_domains_are_balanced_and_subsets_select_them() -> None:
    for split in (TRAIN, EVAL, TASK.make_splits(10, 0, seed=3)[0]):
        counts = Counter(ex.features["domain"] for ex in split)
        assert set(counts) == set(DOMAINS)
        assert max(counts.values()) - min(counts.values()) <= 1
    for domain in DOMAINS:
        subset = domain_subset(TRAIN, domain)
        assert len(subset) == len(TRAIN) // 3
        assert {ex.features["domain"] for ex in subset} == {domain}
    with pytest.raises(ValueError, match="unknown domain"):
        domain_subset(TRAIN, "chrf")


def test_prompt_and_answer_fit_max_length_in_two_to_four_chunks() -> None:
    tokenizer = ByteTokenizer()
    lo, hi = length_bounds(TASK.n_facts)
    lengths = []
    for ex in TRAIN + EVAL:
        ids, labels = encode_example(tokenizer, ex.prompt, TASK.target(ex), MAX_TOKENS)
        assert len(ids) == len(_text(ex)) + 1  # nothing cut off, EOS added
        assert CHUNK_SIZE < lo <= len(ids) <= hi <= MAX_TOKENS
        assert sum(label != -100 for label in labels) == len(TASK.target(ex)) + 1
        lengths.append(len(ids))
    assert {-(-n // CHUNK_SIZE) for n in lengths} == {2, 3}
    longest = "bela tavi doma"  # two adjectives and a noun: every A word has 4 letters
    assert len(f" {render_answer(longest, 'json')}\n") == MIN_NEW_TOKENS
    assert max(len(TASK.target(ex)) for ex in TRAIN + EVAL) == MIN_NEW_TOKENS
    # every allowed n_facts fits 2..4 chunks; the largest actually reaches the 4th chunk
    assert fact_range() == range(3, 10)
    for n in fact_range():
        lo, hi = length_bounds(n)
        assert CHUNK_SIZE < lo and hi <= MAX_TOKENS
        for ex in MixedDomainTask(n).make_splits(60, 0, seed=0)[0]:
            assert lo <= len(_text(ex)) + 1 <= hi
    assert length_bounds(9)[1] > 3 * CHUNK_SIZE
    for n in (2, 10):
        with pytest.raises(BemctlError, match="n_facts must be in 3..9"):
            MixedDomainTask(n)


def test_exact_predictions_score_one_on_every_metric() -> None:
    metrics = [m.name for m in TASK.metrics]
    assert metrics == list(TASK_METRICS["synthetic_mixed"])
    for ex in TRAIN[:90] + EVAL[:90]:
        for prediction in (ex.references[0], TASK.target(ex)):
            assert [TASK.score_example(m, prediction, ex) for m in metrics] == [1.0, 1.0, 1.0]
    with pytest.raises(KeyError, match="format_validity"):
        TASK.score_example("chrf", "x", TRAIN[0])


def test_other_formats_and_malformed_output_are_invalid() -> None:
    for ex in TRAIN[:90]:
        domain, value = ex.features["domain"], ex.features["value"]
        for other in DOMAINS:
            rendered = render_answer(value, other)
            assert TASK.score_example("format_validity", rendered, ex) == float(other == domain)
        for bad in ("", "  ", f"{ex.references[0]}\nmore", ex.references[0] + " ."):
            assert TASK.score_example("format_validity", bad, ex) == 0.0
    assert format_valid('{"answer": "kalo", "extra": 1}', "json")
    for bad_json in ('{"value": "kalo"}', '{"answer": 3}', '["kalo"]', '{"answer": "a"} x'):
        assert not format_valid(bad_json, "json")
    assert format_valid("brox olv ist", "transduce")
    assert not format_valid("olv brox", "transduce")  # adjective before noun is A's order
    assert not format_valid("kalo zeli", "qa")
    # a right-format wrong answer keeps validity and loses exact match
    ex = domain_subset(TRAIN, "transduce")[0]
    wrong = "brox" if ex.references[0] != "brox" else "tesk"
    assert TASK.score_example("format_validity", wrong, ex) == 1.0
    assert TASK.score_example("exact_match", wrong, ex) == 0.0


def test_domain_spans_cover_the_text_and_label_the_target() -> None:
    for ex in TRAIN[:90] + EVAL[:90]:
        domain, spans = ex.features["domain"], ex.features["domain_spans"]
        text = _text(ex)
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
        assert all(a[2] != b[2] for a, b in zip(spans, spans[1:], strict=False))  # merged

        def label(i: int, spans=spans) -> str:
            return next(d for s, e, d in spans if s <= i < e)

        assert {label(i) for i in range(len(ex.prompt), len(text))} == {domain}
        header = text.index("\n") + 1  # the instruction line opens the prompt
        assert {label(i) for i in range(header)} == {domain}
        assert {label(i) for i in range(header, text.index("\nQ: ") + 1)} == {"qa"}
        chunks = chunk_domains(ex)
        assert len(chunks) == -(-len(text) // CHUNK_SIZE) and 2 <= len(chunks) <= 4
        # instruction first, then the retrieval, the answer last
        assert chunks[0][0] == domain and "qa" in chunks[0] and chunks[-1][-1] == domain
        if domain != "qa":
            assert {d for c in chunks for d in c} == {"qa", domain}


def test_spec_with_synthetic_mixed_validates_and_builds(tmp_path: Path) -> None:
    data = yaml.safe_load((EXPERIMENTS / "ar0_bc.yml").read_text())
    data["experiment_name"] = "mixed_router"
    data["data"].update(task="synthetic_mixed", n_facts=6, max_new_tokens=32)
    data["validation"]["metrics"] = ["exact_match", "format_validity"]
    path = tmp_path / "mixed_router.yml"
    path.write_text(yaml.safe_dump(data))
    assert spec_errors(path) == []
    loaded = load_spec(path)
    assert loaded.spec.metric_names == ["exact_match", "format_validity"]
    task = build_task(loaded.spec.data, loaded.resolve, loaded.path)
    assert isinstance(task, MixedDomainTask) and task.n_facts == 6

    data["validation"]["metrics"] = ["chrf"]
    path.write_text(yaml.safe_dump(data))
    assert any("not metrics of task 'synthetic_mixed'" in e for e in spec_errors(path))
    data["validation"]["metrics"] = None
    data["data"]["n_facts"] = 12  # too long for 256 tokens: refused when the task is built
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BemctlError, match="n_facts"):
        build_task(load_spec(path).spec.data, loaded.resolve, path)
