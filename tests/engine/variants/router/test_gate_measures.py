"""Router gate measurements: the evidence-degradation probe and its derangement."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.tasks.base import TaskExample
from engine.variants.router import gate_measures
from engine.variants.router.gate_measures import _derangement, evidence_monotonicity


def test_derangement_moves_every_example() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 101):
        order = _derangement(n, rng)
        assert sorted(order.tolist()) == list(range(n))
        assert not np.any(order == np.arange(n))
    with pytest.raises(ValueError):
        _derangement(1, rng)


class _EvidenceRouter:
    """Routes each prompt to the expert its evidence names: the evidence feature of prompt
    "k" is k, and the plan's only action is expert k."""

    forced_plans = None

    def eval(self):
        return self

    def chunk_states(self, ids: torch.Tensor, prompt_lengths: torch.Tensor | None = None):
        assert prompt_lengths is not None and prompt_lengths.tolist() == [ids.shape[1]]
        return torch.zeros(1, 1, 1), ids.float().view(1, 1, 1)

    def plan(self, previous: torch.Tensor, evidence: torch.Tensor):
        return SimpleNamespace(chunk_actions=[SimpleNamespace(expert=int(evidence[0, 0]))])


class _Tokenizer:
    def encode(self, text: str) -> list[int]:
        return [int(text)]


class _Task:
    """Scores 1 when the routed expert is the example's own (`invert`: when it is not)."""

    def __init__(self, invert: bool = False) -> None:
        self.invert = invert

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        right = prediction == example.references[0]
        return float(right != self.invert)


def _generate_routed_expert(model, tokenizer, prompt, max_new_tokens, device, max_length):
    return str(model.forced_plans[0][0].expert)


def _probe(monkeypatch: pytest.MonkeyPatch, invert: bool) -> dict:
    monkeypatch.setattr(gate_measures, "greedy_generate", _generate_routed_expert)
    examples = [TaskExample(id=str(i), prompt=str(i), references=(str(i),)) for i in range(20)]
    return evidence_monotonicity(
        _EvidenceRouter(),
        _Tokenizer(),
        _Task(invert),
        examples,
        torch.device("cpu"),
        max_new_tokens=4,
        max_length=64,
        seed=0,
        metrics=("m",),
    )


def test_a_router_that_follows_its_evidence_loses_score_as_evidence_degrades(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _probe(monkeypatch, invert=False)
    assert result["means"] == {"clean": 1.0, "half_shuffled": 0.5, "shuffled": 0.0}
    assert result["monotone"] and result["max_rise"] == -0.5
    assert result["n"] == 20


def test_a_score_that_rises_on_degraded_evidence_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _probe(monkeypatch, invert=True)
    assert result["means"] == {"clean": 0.0, "half_shuffled": 0.5, "shuffled": 1.0}
    assert not result["monotone"]
    assert result["max_rise"] == 0.5 and 0 < result["max_rise_margin"] < 0.5
