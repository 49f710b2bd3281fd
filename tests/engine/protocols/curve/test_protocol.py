"""`bemctl run` of a VC experiment on the tiny test project: the operating α is chosen on the
validation split before any test example is scored, the curve and VC's gates reach the
report, and the variant arm's test scores are those of the chosen α."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import engine.evaluation.scoring as scoring
import engine.protocols.curve.points as points
from engine.tasks.safety_task import SyntheticSafetyTask


def write_tiny_vc(project: Path, name: str = "vc_tiny") -> str:
    spec = yaml.safe_load((project / "experiments" / "vc_curve.yml").read_text())
    spec["experiment_name"] = name
    spec["bem_config"].update(
        {
            "rank_dimension": 4,
            "safety_rank": 2,
            "validation_size": 20,
            "curve_points": [0.0, 0.5, 1.0],
        }
    )
    (project / "experiments" / f"{name}.yml").write_text(yaml.safe_dump(spec))
    return name


def test_the_operating_point_is_chosen_before_the_test_split_is_read(
    project: Path, cli, monkeypatch
) -> None:
    name = write_tiny_vc(project)
    spec = yaml.safe_load((project / "experiments" / f"{name}.yml").read_text())
    # the tiny project's --quick sizes (tests/conftest.py): 48 train, 24 eval examples
    _, test = SyntheticSafetyTask(spec["data"]["n_facts"]).make_splits(48, 24, 0)
    test_ids = {ex.id for ex in test}
    log: list[tuple[str, object]] = []
    real_evaluate, real_choose = scoring.evaluate, points.choose_alpha

    def recording_evaluate(model, tokenizer, task, examples, *args, **kwargs):
        log.append(("scored", {ex.id for ex in examples}))
        return real_evaluate(model, tokenizer, task, examples, *args, **kwargs)

    def recording_choose(found, target):
        log.append(("chose", [p.split for p in found]))
        return real_choose(found, target)

    for module in ("engine.runner", "engine.protocols.curve.protocol"):
        monkeypatch.setattr(f"{module}.evaluate", recording_evaluate)
    monkeypatch.setattr("engine.protocols.curve.protocol.choose_alpha", recording_choose)

    result = cli("run", name, "--quick")
    assert result.code == 0, result.err
    assert "operating α" in result.out

    chose = [i for i, (what, _) in enumerate(log) if what == "chose"]
    assert len(chose) == 1 and log[chose[0]][1] == ["validation"] * 3
    scored = [(i, ids) for i, (what, ids) in enumerate(log) if what == "scored"]
    # the baseline is scored on the test split first; the variant only after its choice
    variant_calls = [i for i, ids in scored if i > 0 and not ids & test_ids]
    assert variant_calls and all(i < chose[0] for i in variant_calls[:3])  # its 3 curve points
    between = [ids for i, ids in scored if variant_calls[0] <= i < chose[0]]
    assert between and not any(ids & test_ids for ids in between)

    [record] = json.loads(cli("report", name, "--format", "json").out)
    assert record["protocol"] == "curve"
    assert [s["key"] for s in record["sections"]] == ["vc_curve", "vc_operating"]
    gates = {g["gate"] for g in record["gates"]}
    assert {"violation_reduction", "helpfulness_non_inferior", "over_refusal_not_worse"} <= gates
    assert list(record["statistical_validation"]["bca_bootstrap"]) == ["no_violation"]
    curve = record["curve"]
    assert [p["alpha"] for p in curve["points"]] == [0.0, 0.5, 1.0]
    assert [p["alpha"] for p in curve["validation"]] == [0.0, 0.5, 1.0]
    assert curve["operating_alpha"] in (0.0, 0.5, 1.0) and curve["rule"]
    point = curve["points"][0]
    assert {"violation_rate", "exact_match", "f1", "over_refusal"} <= set(point)
    assert set(point["violation_rate"]) == {"value", "low", "high", "n"}
    assert curve["baseline"]["split"] == "baseline"
    # the variant's stored test scores are its operating α's: the curve point at that α
    # has the violation rate the shared statistics compared
    chosen = next(p for p in curve["points"] if p["alpha"] == curve["operating_alpha"])
    stats = record["statistical_validation"]["paired_differences"]["no_violation"]
    assert stats == pytest.approx(
        curve["baseline"]["violation_rate"]["value"] - chosen["violation_rate"]["value"]
    )
    for fmt, needle in (("md", "| point | violation rate |"), ("csv", "vc_curve/")):
        out = cli("report", name, "--format", fmt)
        assert out.code == 0 and needle in out.out, fmt
