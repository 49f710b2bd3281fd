"""The loop's language-model parts on a tiny LoRA: EWC's Fisher of the history, a shadow
update that learns, and the whole loop over a few stream batches with the real adapter."""

from __future__ import annotations

import torch

from engine.models.tokenizer import ByteTokenizer
from engine.protocols.online.drift import DriftMonitor
from engine.protocols.online.lm import LMSetup, history_fisher, make_score, make_train
from engine.protocols.online.loop import LoopConfig, run_live
from engine.protocols.online.regularizers import make_penalty, snapshot, trainable
from engine.protocols.online.stream import forgetting_set, stream_batch
from engine.tasks.qa_task import SyntheticQATask
from tests.engine.test_training import tiny_adapter

SIZES = {"history_batches": 2, "live_batches": 4, "batch_size": 6}


def _setup() -> LMSetup:
    return LMSetup(ByteTokenizer(), SyntheticQATask(), torch.device("cpu"), 4, 128)


def test_fisher_covers_exactly_the_adapter_and_is_nonnegative() -> None:
    model = tiny_adapter()
    history = list(stream_batch(0, 0, **SIZES).examples)
    fisher = history_fisher(model, _setup(), history)
    assert set(fisher) == set(trainable(model)) and fisher  # the LoRA factors only
    assert all((f >= 0).all() and torch.isfinite(f).all() for f in fisher.values())
    assert sum(float(f.sum()) for f in fisher.values()) > 0


def test_a_shadow_update_moves_the_adapter_and_the_penalty_holds_it_back() -> None:
    setup = _setup()
    batch = list(stream_batch(0, 3, **SIZES).examples)
    movement = {}
    for weight in (0.0, 1e4):
        model = tiny_adapter()
        penalty = make_penalty("prox", model, weight)
        start = snapshot(model)
        make_train(setup, steps=5, learning_rate=1e-2, seed=0)(model, batch, penalty, 0)
        moved = sum(
            float((p.detach() - start[n]).pow(2).sum()) for n, p in trainable(model).items()
        )
        movement[weight] = moved
    assert movement[0.0] > 0 and movement[1e4] < movement[0.0]  # the pull to θ* restrains the move


def test_the_loop_runs_on_a_real_adapter() -> None:
    setup = _setup()
    model = tiny_adapter()
    live = [stream_batch(0, 2 + b, **SIZES).examples for b in range(4)]
    state = run_live(
        model,
        live,
        forgetting_set(0, 6),
        score=make_score(setup),
        train=make_train(setup, steps=2, learning_rate=1e-3, seed=0),
        penalty=make_penalty("prox", model, 1.0),
        monitor=DriftMonitor(window=8),
        config=LoopConfig(canary_every=2, canary_window=8),
    )
    record = state.record
    assert len(record.serving_scores) == 24 and len(record.timeline) == 4
    assert all(s["exact_match"] in (0.0, 1.0) for s in record.serving_scores.values())
    assert [e.batch for e in record.events if e.kind == "canary"] == [1, 3]
