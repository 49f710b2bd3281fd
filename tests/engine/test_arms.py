"""Arm records: what two arms must share, why a finished arm is not reused, what is refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.arms import (
    ArmRecord,
    ScoredArm,
    comparison_refusal,
    eval_fingerprint,
    ids_fingerprint,
    reuse_problem,
)
from engine.plan import RunOptions, freeze_plan
from engine.settings import Settings
from engine.spec import find_spec
from engine.tasks.base import TaskExample

REPO = Path(__file__).resolve().parents[2]
EVALS = [TaskExample(f"q{i}", f"prompt {i}", (f"answer {i}",), {"domain": i % 3}) for i in range(5)]


def _frozen(**quick):
    settings = Settings(quick={"train_steps": 6, "eval_examples": 24, **quick})
    spec = find_spec("v1_dynrank", [REPO / "experiments"]).spec
    return freeze_plan(spec, settings, RunOptions(quick=True))


def _record(key: str = "k" * 32, evals=EVALS, device: str = "cpu", **quick) -> ArmRecord:
    return ArmRecord.of(_frozen(**quick), key, evals, device)


def _arm(run_id: int, role: str, record: ArmRecord | None, ids=None) -> ScoredArm:
    ids = tuple(ex.id for ex in EVALS) if ids is None else tuple(ids)
    return ScoredArm(run_id, role, 0, record, ids_fingerprint(ids), len(ids), ids)


def test_eval_fingerprint_sees_ids_content_and_order() -> None:
    base = eval_fingerprint(EVALS)
    assert base == eval_fingerprint(list(EVALS))
    assert base != eval_fingerprint(EVALS[::-1])
    assert base != eval_fingerprint(EVALS[:4])
    assert base != eval_fingerprint([dataclasses.replace(EVALS[0], id="x"), *EVALS[1:]])
    changed = dataclasses.replace(EVALS[2], references=("other",))
    assert base != eval_fingerprint([*EVALS[:2], changed, *EVALS[3:]])
    feat = dataclasses.replace(EVALS[1], features={"domain": 2})
    assert base != eval_fingerprint([EVALS[0], feat, *EVALS[2:]])


def test_record_survives_the_store() -> None:
    record = _record()
    assert ArmRecord.from_json(record.to_json()) == record
    assert record.plan["seeds"] == [0]  # JSON values, as read back


def test_reuse_problem_names_the_difference_as_the_log_shows_it() -> None:
    expected = _record(train_steps=100)
    assert reuse_problem(expected.to_json(), expected.adapter_key, expected) is None
    stored = _record(train_steps=8)
    assert reuse_problem(stored.to_json(), stored.adapter_key, expected) == "steps 8, plan says 100"
    other_eval = _record(evals=EVALS[:3], train_steps=100)
    assert reuse_problem(other_eval.to_json(), expected.adapter_key, expected).startswith(
        "eval set 3 examples"
    )
    assert (
        reuse_problem(expected.to_json(), "a" * 32, expected)
        == "adapter key aaaaaaaa, plan says kkkkkkkk"
    )
    assert reuse_problem(None, expected.adapter_key, expected) == (
        "it records no plan (made by an older bemctl)"
    )
    assert "unreadable" in reuse_problem("{}", expected.adapter_key, expected)
    cuda = _record(device="cuda", train_steps=100)
    assert reuse_problem(cuda.to_json(), expected.adapter_key, expected) == (
        "device cuda, plan says cpu"
    )


def test_matching_arms_are_not_refused() -> None:
    record = _record()
    assert comparison_refusal([_arm(1, "baseline", record), _arm(2, "variant", record)]) is None


def test_arms_with_different_plans_are_refused_naming_the_field() -> None:
    refusal = comparison_refusal(
        [_arm(1, "baseline", _record(train_steps=100)), _arm(2, "variant", _record(train_steps=8))]
    )
    assert refusal == (
        "refused, the arms differ in more than the variant: baseline run 1 (seed 0) and "
        "variant run 2 (seed 0) differ in steps (100 vs 8)"
    )


def test_arms_scored_on_other_positions_are_refused_naming_the_position() -> None:
    record = _record()
    ids = [ex.id for ex in EVALS]
    swapped = [ids[0], ids[2], ids[1], *ids[3:]]
    refusal = comparison_refusal([_arm(1, "baseline", record), _arm(2, "variant", record, swapped)])
    assert refusal is not None and "scored on different examples or positions" in refusal
    assert "(position 1: q1 vs q2)" in refusal
    fewer = comparison_refusal([_arm(1, "baseline", record), _arm(2, "variant", record, ids[:4])])
    assert fewer is not None and "(5 vs 4 examples)" in fewer
    # without the id lists (a stored outcome) the fingerprints still tell them apart
    stored = [
        ScoredArm.from_dict(a.to_dict())
        for a in (_arm(1, "baseline", record), _arm(2, "variant", record, swapped))
    ]
    assert "scored on different examples" in comparison_refusal(stored)


def test_expected_ids_check_the_first_arm_against_the_eval_set() -> None:
    record = _record()
    ids = [ex.id for ex in EVALS]
    arms = [_arm(1, "baseline", record), _arm(2, "variant", record)]
    assert comparison_refusal(arms, expected_ids=ids) is None
    refusal = comparison_refusal(arms, expected_ids=ids[::-1])
    assert refusal is not None and "not scored on this job's eval set in order" in refusal


def test_an_arm_without_a_record_is_refused() -> None:
    refusal = comparison_refusal([_arm(1, "baseline", _record()), _arm(2, "variant", None)])
    assert refusal is not None and "variant run 2 (seed 0) records no plan" in refusal
