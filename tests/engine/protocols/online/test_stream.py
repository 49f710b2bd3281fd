"""The drifting stream: deterministic, drifting as documented, forgetting set held out."""

from __future__ import annotations

import pytest

from engine.protocols.online.stream import forgetting_set, live_phase, stream_batch

SIZES = {"history_batches": 4, "live_batches": 9, "batch_size": 16}


def _stream(seed: int = 0):
    total = SIZES["history_batches"] + SIZES["live_batches"]
    return [stream_batch(seed, i, **SIZES) for i in range(total)]


def test_same_seed_same_stream_and_any_batch_alone() -> None:
    a, b = _stream(), _stream()
    assert a == b
    assert stream_batch(0, 7, **SIZES) == a[7]  # a resumed stream regenerates one batch
    assert _stream(seed=1) != a
    ids = [ex.id for batch in a for ex in batch.examples]
    assert len(ids) == len(set(ids))


def test_the_world_drifts_along_the_live_part() -> None:
    stream = _stream()
    assert [b.part for b in stream] == ["history"] * 4 + ["live"] * 9
    history = [ex for b in stream[:4] for ex in b.examples]
    assert all(ex.prompt.split("\nQ: ")[1].startswith("what is ") for ex in history)
    assert not any(ex.features["updated"] for ex in history)
    keys = {len(f.split(": ")[0]) for ex in history for f in ex.features["context"].split("; ")}
    assert keys == {3}
    late = [ex for b in stream[-3:] for ex in b.examples]
    assert any(ex.features["updated"] for ex in late)
    assert any(ex.features["question"].endswith(" = ?") for ex in late)
    for ex in late:
        if ex.features["updated"]:  # the latest statement of the key is the answer
            key_value = ex.features["context"].split("; ")[-1].split(": ")
            assert ex.references == (key_value[1],)
    assert [live_phase(i, 9).name[:6] for i in (0, 3, 8)] == ["live-1", "live-2", "live-3"]


def test_forgetting_set_never_meets_the_stream() -> None:
    held = forgetting_set(0, 200)
    items = {(ex.features["context"], ex.features["question"]) for ex in held}
    stream = {
        (ex.features["context"], ex.features["question"]) for b in _stream() for ex in b.examples
    }
    assert not items & stream and len(held) == 200
    assert all(ex.features["phase"] == "history" for ex in held)


def test_out_of_range_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        stream_batch(0, 13, **SIZES)
