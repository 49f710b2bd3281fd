"""The plan frozen into a queued job: resolved once, stored as JSON, read back identically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.plan import FrozenPlan, RunOptions, freeze_plan, make_plan
from engine.settings import Settings
from engine.spec import find_spec

REPO = Path(__file__).resolve().parents[2]


def _v1():
    return find_spec("v1_dynrank", [REPO / "experiments"])


def _settings(**quick) -> Settings:
    return Settings(
        quick={"train_examples": 48, "eval_examples": 24, "train_steps": 6, **quick},
        pretrain={"steps": 8, "batch_size": 8, "corpus_docs": 200},
        seed=3,
    )


def test_round_trip_keeps_every_field() -> None:
    frozen = freeze_plan(_v1().spec, _settings(), RunOptions(quick=True, fdr_alpha=0.1))
    back = FrozenPlan.from_json(frozen.to_json())
    assert back == frozen
    assert isinstance(back.experiment.seeds, tuple)
    assert (back.experiment.steps, back.experiment.eval_size, back.experiment.seed) == (6, 24, 3)
    assert back.experiment.fdr_alpha == 0.1
    assert back.pretrain == {"steps": 8, "batch_size": 8, "learning_rate": 3e-3, "corpus_docs": 200}
    assert back.experiment == make_plan(
        _v1().spec, _settings(), RunOptions(quick=True, fdr_alpha=0.1)
    )


def test_a_local_model_freezes_no_pretraining_plan() -> None:
    loaded = _v1()
    local = loaded.spec.model_copy(
        update={"model": loaded.spec.model.model_copy(update={"base_model": "/models/gpt2"})}
    )
    assert freeze_plan(local, _settings(), RunOptions(quick=True)).pretrain is None


def test_differences_name_each_field() -> None:
    a = freeze_plan(_v1().spec, _settings(), RunOptions(quick=True))
    b = freeze_plan(
        _v1().spec, _settings(train_steps=100, eval_examples=120), RunOptions(quick=True)
    )
    assert a.differences(b) == [("eval_size", 24, 120), ("steps", 6, 100)]
    assert a.differences(a) == []


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format=99), "plan format 99"),
        (lambda d: d["experiment"].pop("steps"), "missing: ['steps']"),
        (lambda d: d["experiment"].update(warp=1), "unknown: ['warp']"),
    ],
)
def test_a_bad_stored_plan_is_refused_with_the_reason(edit, message) -> None:
    data = json.loads(freeze_plan(_v1().spec, _settings(), RunOptions(quick=True)).to_json())
    edit(data)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FrozenPlan.from_json(json.dumps(data))


def test_measure_settings_enter_the_plan_and_older_plans_read_back() -> None:
    """`[measure]` is frozen with the job (a retry probes as its first attempt did); a plan
    frozen before those fields existed reads back with the values it ran under."""
    settings = Settings(
        measure={"latency_rounds": 7, "new_tokens": 5, "probe_prompts": 3, "memory_prompts": 2}
    )
    full = make_plan(_v1().spec, settings, RunOptions())
    assert (full.latency_rounds, full.measure_new_tokens) == (7, 5)
    assert (full.probe_prompts, full.memory_probe_prompts) == (3, 2)
    quick = make_plan(_v1().spec, settings, RunOptions(quick=True))
    assert quick.latency_rounds == settings.quick.latency_rounds  # --quick keeps its own
    stored = json.loads(freeze_plan(_v1().spec, _settings(), RunOptions(quick=True)).to_json())
    for name in ("measure_new_tokens", "probe_prompts", "memory_probe_prompts"):
        del stored["experiment"][name]
    old = FrozenPlan.from_json(json.dumps(stored)).experiment
    assert (old.measure_new_tokens, old.probe_prompts, old.memory_probe_prompts) == (16, 16, 8)
    del stored["experiment"]["steps"]  # a field that was always there stays required
    with pytest.raises(ValueError, match="missing: \\['steps'\\]"):
        FrozenPlan.from_json(json.dumps(stored))
