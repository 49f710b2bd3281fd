"""`bemctl run` of an OL experiment on the tiny test project: both arms scored on every live
example once, the stream timeline and events stored, OL's sections and gates in the record,
the poisoned stretch marked in the stream. (What the loop decides is tested on models whose
right answers are known, in test_loop.py; the tiny base here answers nothing right.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from store.db import Store
from store.models import ExampleScore, Run
from store.stream import stream_events, stream_points

LIVE, SIZE = 6, 8


def write_tiny_ol(project: Path, name: str = "ol_tiny", **overrides) -> str:
    spec = yaml.safe_load((project / "experiments" / "ol_shadow.yml").read_text())
    spec["experiment_name"] = name
    tiny = {
        "live_batches": 12, "quick_live_batches": LIVE, "stream_batch_size": SIZE,
        "canary_every": 2, "canary_window": 8, "canary_forgetting_examples": 8,
        "drift_window": 8, "fisher_examples": 8, "poison_batches": [2, 3],
    }  # fmt: skip
    spec["bem_config"].update({**tiny, **overrides})
    spec["data"]["max_new_tokens"] = 4
    (project / "experiments" / f"{name}.yml").write_text(yaml.safe_dump(spec))
    return name


def test_an_online_run_stores_its_stream_and_reaches_the_report(project: Path, cli) -> None:
    name = write_tiny_ol(project)
    result = cli("run", name, "--quick")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert "stream (seed 0): " in result.out and "forgetting exact_match" in result.out

    [record] = json.loads(cli("report", name, "--format", "json").out)
    assert record["protocol"] == "online"
    keys = [s["key"] for s in record["sections"]]
    assert keys == ["ol_stream", "ol_forgetting", "ol_canary", "ol_events"]
    gates = {g["gate"] for g in record["gates"]}
    assert {"forgetting_non_inferior", "no_unproven_weights_served", "drift_rollback"} <= gates
    assert record["stream"] is not None and len(record["stream"]["points"]) == LIVE
    canaries = [e for e in record["stream"]["events"] if e["kind"] == "canary"]
    assert [e["batch"] for e in canaries] == [1, 3, 5]  # every canary_every batches
    [canary_section] = [s for s in record["sections"] if s["key"] == "ol_canary"]
    assert len(canary_section["rows"]) == 3

    db = project / ".bemctl" / "bemctl.db"
    with Store(db, readonly=True) as store, store.read_session() as session:
        runs = {r.role: r for r in session.exec(select(Run)).all()}
        assert {r.status for r in runs.values()} == {"succeeded"}
        for run in runs.values():
            rows = session.exec(select(ExampleScore).where(ExampleScore.run_id == run.id)).all()
            ids = [r.example_id for r in rows if r.metric == "exact_match"]
            assert len(ids) == len(set(ids)) == LIVE * SIZE + 24  # live + forgetting (eval 24)
        points = stream_points(store, runs["variant"].id)
        assert [p.batch for p in points] == list(range(LIVE))
        assert [e.seq for e in stream_events(store, runs["variant"].id)] == list(
            range(len(record["stream"]["events"]))
        )
        assert stream_points(store, runs["baseline"].id) == []
    # the checkpoint is gone once the results are in the store
    assert not list((project / ".bemctl" / "online").glob("*.safetensors"))

    for fmt, needle in (
        ("md", "| live batches | live examples |"),
        ("html", "stream timeline"),
        ("csv", "ol_stream/"),
    ):
        out = cli("report", name, "--format", fmt)
        assert out.code == 0 and needle in out.out, fmt


def test_a_stream_file_too_short_is_refused_in_one_line(project: Path, cli) -> None:
    rows = [{"id": i, "context": "k: v", "question": "what is k?", "answers": ["v"]}
            for i in range(10)]  # fmt: skip
    (project / "experiments" / "stream.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n"
    )
    name = write_tiny_ol(project, "ol_file", stream_file="stream.jsonl")
    result = cli("run", name, "--quick")
    assert result.code != 0
    assert "stream.jsonl: 10 examples; the stream needs at least" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("bad", [{"poison_batches": [99]}, {"ol_regularizer": "l3"}])
def test_bad_online_fields_are_refused_by_validate(project: Path, cli, bad) -> None:
    name = write_tiny_ol(project, "ol_bad", **bad)
    result = cli("validate", f"experiments/{name}.yml")
    assert result.code == 2, result.out + result.err
    field = next(iter(bad))
    assert f"bem_config.{field}" in result.err or field in result.err


def test_a_missing_stream_file_is_refused_by_validate(project: Path, cli) -> None:
    name = write_tiny_ol(project, "ol_nofile", stream_file="nowhere.jsonl")
    result = cli("validate", f"experiments/{name}.yml")
    assert result.code == 2
    assert "bem_config.stream_file:" in result.err and "nowhere.jsonl: file not found" in result.err


def test_a_jsonl_stream_runs_in_file_order(project: Path, cli) -> None:
    from engine.protocols.online.stream import stream_batch

    sizes = {"history_batches": 8, "live_batches": 8, "batch_size": 8}
    examples = [ex for i in range(16) for ex in stream_batch(3, i, **sizes).examples]
    lines = [
        {"id": f"u{i}", "context": ex.features["context"], "question": ex.features["question"],
         "answers": list(ex.references)}
        for i, ex in enumerate(examples)
    ]  # fmt: skip
    (project / "experiments" / "stream.jsonl").write_text(
        "\n".join(json.dumps(r) for r in lines) + "\n"
    )
    name = write_tiny_ol(project, "ol_file", stream_file="stream.jsonl", poison_batches=[])
    result = cli("run", name, "--quick")
    assert result.code == 0, result.err
    [record] = json.loads(cli("report", name, "--format", "json").out)
    assert record["sections"][0]["title"].startswith("Online stream (JSONL file ")
    # 128 lines: 48 history, 24 forgetting, then 7 whole live batches of 8 (capped at 6)
    assert len(record["stream"]["points"]) == LIVE
    db = project / ".bemctl" / "bemctl.db"
    with Store(db, readonly=True) as store, store.read_session() as session:
        variant = session.exec(select(Run).where(Run.role == "variant")).one()
        ids = [s.example_id for s in session.exec(
            select(ExampleScore).where(ExampleScore.run_id == variant.id,
                                       ExampleScore.metric == "exact_match")
            .order_by(ExampleScore.position)
        ).all()]  # fmt: skip
    live = [f"stream-u{i}" for i in range(72, 72 + LIVE * SIZE)]
    forgetting = [f"stream-u{i}" for i in range(48, 72)]
    assert ids == live + forgetting
