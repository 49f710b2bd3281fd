"""The online loop on a one-weight model: prequential order, canary, poisoning, rollback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.protocols.online.drift import DriftCheck, DriftMonitor
from engine.protocols.online.loop import LoopConfig, canary_split, run_live
from engine.protocols.online.regularizers import make_penalty, snapshot
from engine.tasks.base import TaskExample


class OneWeight(nn.Module):
    """Answers +1 when its weight is positive: an example is right if its target agrees."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w]))


def _batch(b: int, target: float, n: int = 8) -> list[TaskExample]:
    return [TaskExample(f"b{b}-{i}", "q", (str(target),), {"target": target}) for i in range(n)]


def score(model: nn.Module, examples) -> list[dict[str, float]]:
    sign = 1.0 if model.w.item() > 0 else -1.0
    return [{"exact_match": float(ex.features["target"] == sign)} for ex in examples]


def train(model: nn.Module, examples, penalty, batch: int = 0) -> float:
    """Three SGD steps of (w - mean target)² plus the penalty."""
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    target = sum(ex.features["target"] for ex in examples) / len(examples)
    for _ in range(3):
        opt.zero_grad()
        loss = (model.w - target).pow(2).sum() + penalty(model)
        loss.backward()
        opt.step()
    return loss.item()


FORGET = [TaskExample(f"f{i}", "q", ("1.0",), {"target": 1.0}) for i in range(16)]


def _run(model: OneWeight, live, *, prox: float, monitor=None, score_fn=score, train_fn=train,
         **config):  # fmt: skip
    """The loop over `live` from `model`'s weights, with the test's defaults."""
    return run_live(
        model,
        live,
        FORGET,
        score=score_fn,
        train=train_fn,
        penalty=make_penalty("prox", model, prox),
        monitor=monitor or DriftMonitor(window=8),
        config=LoopConfig(canary_every=2, **config),
    ).record


def test_every_example_is_scored_before_anything_trains_on_it() -> None:
    model = OneWeight(1.0)
    order: list[tuple[str, str]] = []

    def scoring(m, examples):
        order.extend(("scored", ex.id) for ex in examples)
        return score(m, examples)

    def training(m, examples, penalty, batch):
        order.extend(("trained", ex.id) for ex in examples)
        return train(m, examples, penalty, batch)

    live = [_batch(b, 1.0) for b in range(6)]
    record = _run(model, live, prox=0.1, score_fn=scoring, train_fn=training)
    first_seen: dict[str, int] = {}
    for position, (what, ex_id) in enumerate(order):
        if what == "scored":
            first_seen.setdefault(ex_id, position)
        else:
            assert ex_id in first_seen and first_seen[ex_id] < position, ex_id
    assert set(record.serving_scores) == {ex.id for b in live for ex in b}
    canary_ids = {ex.id for b in live for ex in canary_split(b, 0.25)[0]}
    assert not canary_ids & set(record.trained_on)  # the canary is never trained on


def test_a_poisoned_stretch_is_not_promoted() -> None:
    """Answers scrambled (target flipped) for batches 4-11: the shadow learns them, wins on
    the poisoned canary, loses on the forgetting set, and is refused every time."""
    model = OneWeight(1.0)
    live = [_batch(b, -1.0 if 4 <= b < 12 else 1.0) for b in range(16)]
    record = _run(model, live, prox=0.01, canary_window=8)
    canaries = [e for e in record.events if e.kind == "canary"]
    refused = [e for e in canaries if "forgetting" in e.detail]
    print("refused at live batches", [e.batch for e in refused])
    assert refused and min(e.batch for e in refused) <= 7  # caught within the stretch
    assert not any(e.kind == "promotion" and 4 <= e.batch < 12 for e in record.events)
    assert model.w.item() > 0  # serving never took the poisoned weights


class AlarmAt:
    """A monitor that alarms on given batches only (the real one is tested on its own)."""

    def __init__(self, batches: set[int]) -> None:
        self.batches, self.n = batches, -1

    def update(self, scores) -> DriftCheck:
        self.n += 1
        alarm = self.n in self.batches
        return DriftCheck(("stub",) if alarm else (), alarm, None, None, None, None)

    def reset(self, reference) -> None:
        pass


def test_rollback_after_a_promotion_restores_the_exact_last_good_weights() -> None:
    model = OneWeight(0.5)
    deployed = snapshot(model)["w"]
    weights_scoring: dict[str, list[torch.Tensor]] = {}

    def scoring(m, examples):
        weights_scoring.setdefault(examples[0].id, []).append(m.w.detach().clone())
        return score(m, examples)

    live = [_batch(b, 1.0) for b in range(6)]
    record = _run(model, live, prox=0.0, monitor=AlarmAt({2}), score_fn=scoring, margin=0.5)
    kinds = [(e.batch, e.kind) for e in record.events]
    assert kinds[:5] == [
        (1, "canary"),
        (1, "promotion"),
        (2, "drift_alarm"),
        (2, "rollback"),
        (3, "canary"),
    ]
    promoted = weights_scoring["b2-0"][0]  # batch 2 was served by the promoted shadow
    assert not torch.equal(promoted, deployed)
    # batch 3 is served (first scoring of its examples) by the last good weights: exactly
    # the deployed ones, bit for bit
    assert torch.equal(weights_scoring["b3-0"][0], deployed)


def test_loop_config_is_checked() -> None:
    with pytest.raises(ValueError, match="canary_fraction"):
        LoopConfig(canary_fraction=1.0)
