"""The loop's checkpoint: exact round trip, refusals, and a stream stopped after any batch
and resumed from its checkpoint ending exactly where the uninterrupted stream ends."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from engine.protocols.online.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.protocols.online.drift import DriftMonitor
from engine.protocols.online.loop import LoopConfig, LoopState, run_live
from engine.protocols.online.regularizers import make_penalty
from tests.engine.protocols.online.test_loop import FORGET, OneWeight, _batch, score, train

CPU = torch.device("cpu")


class Stop(Exception):
    """Stands in for the kill: the loop stops after a batch's checkpoint, nothing closed."""


def _live():
    # a poisoned middle stretch, so the stream has promotions, refusals and drift to resume
    return [_batch(b, -1.0 if 5 <= b < 9 else 1.0) for b in range(14)]


def _run(model, state=None, after=None, scored=None):
    def scoring(m, examples):
        if scored is not None:
            scored.append(tuple(ex.id for ex in examples))
        return score(m, examples)

    return run_live(
        model,
        _live(),
        FORGET,
        score=scoring,
        train=train,
        penalty=make_penalty("prox", model, 0.01),
        monitor=DriftMonitor(window=8),
        config=LoopConfig(canary_every=2, canary_window=8, margin=0.3),
        state=state,
        after_batch=after,
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    model = OneWeight(0.5)
    state = _run(model)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, "key", state, {"w": torch.tensor([2.0])}, {"variant": 7})
    back = load_checkpoint(path, "key", CPU)
    assert isinstance(back, Checkpoint) and back.runs == {"variant": 7}
    assert back.state.record == state.record
    assert set(back.state.weights) == set(state.weights)
    for slot, params in state.weights.items():
        assert torch.equal(back.state.weights[slot]["w"], params["w"])
    assert torch.equal(back.fisher["w"], torch.tensor([2.0]))
    assert (back.state.next_batch, back.state.serving_source) == (14, state.serving_source)
    assert back.state.monitor_feed == state.monitor_feed
    assert [ex.id for ex in back.state.canary] == [ex.id for ex in state.canary]


def test_other_conditions_or_a_damaged_file_are_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    assert load_checkpoint(path, "key", CPU) == "no checkpoint"
    save_checkpoint(path, "key", LoopState.start(OneWeight(1.0)), None, {})
    assert "other conditions" in load_checkpoint(path, "another key", CPU)
    path.write_bytes(path.read_bytes()[:40])
    assert "unreadable" in load_checkpoint(path, "key", CPU)


@pytest.mark.parametrize("stop_after", [0, 3, 6, 12])
def test_a_stream_resumed_from_its_checkpoint_ends_as_the_uninterrupted_one(
    tmp_path: Path, stop_after: int
) -> None:
    whole = _run(OneWeight(0.5))
    assert {e.kind for e in whole.record.events} >= {"canary", "promotion"}

    path = tmp_path / "ck.safetensors"
    first_scored: list[tuple[str, ...]] = []

    def checkpoint_then_maybe_die(b, state, point, events) -> None:
        save_checkpoint(path, "key", state, None, {})
        if b == stop_after:
            raise Stop

    with pytest.raises(Stop):
        _run(OneWeight(0.5), after=checkpoint_then_maybe_die, scored=first_scored)
    restored = load_checkpoint(path, "key", CPU)
    assert isinstance(restored, Checkpoint) and restored.state.next_batch == stop_after + 1
    model = OneWeight(-3.0)  # whatever the new process holds: the checkpoint decides
    second_scored: list[tuple[str, ...]] = []
    resumed = _run(model, state=restored.state, scored=second_scored)

    assert resumed.record == whole.record  # same scores, timeline, events, canary decisions
    for slot in ("deployed", "serving", "shadow"):
        assert torch.equal(resumed.weights[slot]["w"], whole.weights[slot]["w"])
    assert model.w.item() == whole.weights["serving"]["w"].item()
    # each live batch is served (scored as a whole batch) in exactly one of the two processes:
    # the first's up to its last checkpoint, the second's after it (canary windows of earlier
    # traffic are re-compared, as the uninterrupted loop compares them)
    batches = {tuple(ex.id for ex in batch): b for b, batch in enumerate(_live())}
    first = {batches[c] for c in first_scored if c in batches}
    second = {batches[c] for c in second_scored if c in batches}
    assert first >= set(range(stop_after + 1)) and max(first) == stop_after
    assert second == set(range(stop_after + 1, len(batches)))


def test_record_fields_all_survive_the_checkpoint() -> None:
    """A field added to the record must be added to the checkpoint's reader too."""
    from engine.protocols.online.loop import LoopRecord

    names = {f.name for f in dataclasses.fields(LoopRecord)}
    assert names == {"serving_scores", "deployed_scores", "timeline", "events", "canaries",
                     "trained_on"}  # fmt: skip
