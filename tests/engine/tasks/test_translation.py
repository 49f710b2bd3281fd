"""Synthetic translation: grammar, determinism, disjoint splits, sacrebleu-exact corpus metrics."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sacrebleu

from engine.tasks.translation import (
    ADJECTIVES,
    LEXICON,
    NOUNS,
    VERBS,
    Sentence,
    TranslationTask,
    is_heldout,
    translate,
)

TASK = TranslationTask()


def test_lexicon_is_a_bijection_between_disjoint_vocabularies() -> None:
    pairs = NOUNS + ADJECTIVES + VERBS
    source, target = [a for a, _ in pairs], [b for _, b in pairs]
    assert len(set(source)) == len(source) == len(LEXICON)
    assert len(set(target)) == len(target)
    assert not set(source) & set(target)


def test_reordering_rule_mirrors_noun_phrases_and_puts_the_verb_last() -> None:
    sentence = Sentence(("zeli", "kuma", "kalo"), "sovat", ("nori", "miru"))
    assert sentence.source() == "zeli kuma kalo sovat nori miru"
    assert sentence.target() == "brox olv ist tesk ark jagu"
    assert translate("kalo sovat miru") == "brox tesk jagu"
    with pytest.raises(ValueError):
        translate("kalo miru")  # no verb


def test_examples_have_the_task_format() -> None:
    train, evals = TASK.make_splits(200, 50, seed=0)
    lengths = set()
    for ex in train + evals:
        source = ex.features["source"]
        assert ex.prompt == f"translate: {source}\n=>"
        assert ex.references == (translate(source),)
        assert TASK.target(ex) == f" {ex.references[0]}\n"
        lengths.add(len(source.split()))
        assert len(ex.references[0].split()) == len(source.split())
    assert lengths == {3, 4, 5, 6}


def test_splits_are_deterministic_and_seeded() -> None:
    a = TASK.make_splits(60, 30, seed=3)
    b = TranslationTask().make_splits(60, 30, seed=3)
    assert [(e.id, e.prompt, e.references) for e in a[0] + a[1]] == [
        (e.id, e.prompt, e.references) for e in b[0] + b[1]
    ]
    c = TASK.make_splits(60, 30, seed=4)
    assert [e.prompt for e in a[0]] != [e.prompt for e in c[0]]
    # a larger request extends the streams, it does not reshuffle them
    longer = TASK.make_splits(80, 30, seed=3)[0]
    assert [e.prompt for e in longer[:60]] == [e.prompt for e in a[0]]


def test_train_eval_and_pretraining_are_disjoint() -> None:
    train, evals = TASK.make_splits(500, 200, seed=1)
    train_src = {e.features["source"] for e in train}
    eval_src = {e.features["source"] for e in evals}
    assert not train_src & eval_src
    assert all(is_heldout(s) for s in eval_src)
    assert not any(is_heldout(s) for s in train_src)
    docs = TASK.pretraining_corpus(100, seed=1)
    assert len(docs) == 100 and all(d.endswith("\n") for d in docs)
    corpus_src = [
        line.removeprefix("translate: ")
        for doc in docs
        for line in doc.splitlines()
        if line.startswith("translate: ")
    ]
    assert len(corpus_src) == 300
    assert not any(is_heldout(s) for s in corpus_src)
    assert not set(corpus_src) & eval_src
    for doc in docs:  # documents use exactly the prompt/target format
        lines = doc.splitlines()
        for src_line, tgt_line in zip(lines[::2], lines[1::2], strict=True):
            assert tgt_line == "=> " + translate(src_line.removeprefix("translate: "))
    assert TASK.pretraining_corpus(100, seed=1) == docs


# ---------------------------------------------------------------- metrics


def _predictions(examples) -> list[str]:
    """A mix of exact, partial, reordered, empty, over-long and junk outputs."""
    preds = []
    for i, ex in enumerate(examples):
        ref = ex.references[0].split()
        kind = i % 6
        if kind == 0:
            preds.append(" ".join(ref))
        elif kind == 1:
            preds.append(" ".join(ref[:-1]))
        elif kind == 2:
            preds.append(" ".join(reversed(ref)))
        elif kind == 3:
            preds.append("")
        elif kind == 4:
            preds.append(" ".join(ref + ref[:2]) + " .")
        else:
            preds.append("brox zzz, qqq!")
    return preds


def _stats(metric: str, preds, examples) -> np.ndarray:
    return np.stack([TASK.corpus_stats(metric, p, e) for p, e in zip(preds, examples, strict=True)])


def test_corpus_scores_equal_sacrebleu_python_api() -> None:
    _, evals = TASK.make_splits(0, 36, seed=2)
    preds = _predictions(evals)
    refs = [[e.references[0] for e in evals]]
    expected = {
        "chrf": sacrebleu.corpus_chrf(preds, refs).score,
        "bleu": sacrebleu.corpus_bleu(preds, refs).score,
    }
    assert 0 < expected["bleu"] < expected["chrf"] < 100
    for metric, want in expected.items():
        stats = _stats(metric, preds, evals)
        assert stats.ndim == 2 and stats.shape[0] == 36
        got = TASK.corpus_score(metric, stats.sum(0, keepdims=True))
        assert got.shape == (1,)
        assert got[0] == pytest.approx(want, abs=1e-9)
        assert TASK.corpus_value(metric, preds, evals) == pytest.approx(want, abs=1e-9)


def test_corpus_score_scores_every_resample_row() -> None:
    """What the bootstrap does: each row is a resample's summed statistics."""
    _, evals = TASK.make_splits(0, 24, seed=5)
    preds = _predictions(evals)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, 24, size=(5, 24))
    for metric, scorer in (("chrf", sacrebleu.corpus_chrf), ("bleu", sacrebleu.corpus_bleu)):
        stats = _stats(metric, preds, evals)
        got = TASK.corpus_score(metric, stats[draws].sum(1))
        want = [
            scorer([preds[i] for i in row], [[evals[i].references[0] for i in row]]).score
            for row in draws
        ]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_corpus_scores_agree_with_the_sacrebleu_cli(tmp_path: Path) -> None:
    _, evals = TASK.make_splits(0, 30, seed=6)
    preds = _predictions(evals)
    (tmp_path / "ref.txt").write_text("".join(e.references[0] + "\n" for e in evals))
    (tmp_path / "hyp.txt").write_text("".join(p + "\n" for p in preds))
    out = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i",
         str(tmp_path / "hyp.txt"), "-m", "bleu", "chrf", "-w", "6", "-f", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    cli = {row["name"]: row["score"] for row in json.loads(out.stdout)}
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        ours = TASK.corpus_value(metric, preds, evals)
        assert ours == pytest.approx(cli[name], abs=1e-6), metric


def test_perfect_and_empty_predictions() -> None:
    _, evals = TASK.make_splits(0, 10, seed=7)
    refs = [e.references[0] for e in evals]
    assert TASK.corpus_value("chrf", refs, evals) == pytest.approx(100.0)
    assert TASK.corpus_value("bleu", refs, evals) == pytest.approx(100.0)
    assert TASK.corpus_value("chrf", [""] * 10, evals) == 0.0
    assert TASK.corpus_value("bleu", [""] * 10, evals) == 0.0


def test_metric_specs_and_unknown_metrics() -> None:
    assert [(m.name, m.corpus_level) for m in TASK.metrics] == [("chrf", True), ("bleu", True)]
    ex = TASK.make_splits(1, 0, seed=0)[0][0]
    with pytest.raises(KeyError, match="known: chrf, bleu"):
        TASK.corpus_stats("ter", "x", ex)
    with pytest.raises(NotImplementedError):
        TASK.score_example("chrf", "x", ex)
