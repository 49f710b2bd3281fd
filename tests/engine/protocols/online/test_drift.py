"""The drift monitor: river's detectors used as river defines them, a correct vote, and a
planted change point caught within a few batches (the delay is printed with -s)."""

from __future__ import annotations

import random

import pytest
from river import drift as river_drift

from engine.protocols.online.drift import SIGNALS, DriftMonitor, vote_passes

BATCH, CHANGE_BATCH = 16, 40


def _scores(seed: int, before: float = 0.8, after: float = 0.3, batches: int = 80) -> list[float]:
    """0/1 exact-match scores whose success rate drops at batch CHANGE_BATCH."""
    rng = random.Random(seed)
    n_change = CHANGE_BATCH * BATCH
    return [
        float(rng.random() < (before if i < n_change else after)) for i in range(batches * BATCH)
    ]


def _run(monitor: DriftMonitor, xs: list[float]) -> list:
    return [monitor.update(xs[b * BATCH : (b + 1) * BATCH]) for b in range(len(xs) // BATCH)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_a_planted_drop_is_caught_within_four_batches_and_not_before(seed: int) -> None:
    checks = _run(DriftMonitor(), _scores(seed))
    alarms = [b for b, c in enumerate(checks) if c.alarm]
    assert alarms, "the drop was never caught"
    delay = alarms[0] - CHANGE_BATCH
    fired = checks[alarms[0]].fired
    print(f"seed {seed}: alarm at batch {alarms[0]}, delay {delay} batches ({fired})")
    assert 0 <= delay <= 4
    assert not any(c.fired for c in checks[:CHANGE_BATCH])  # a stationary stream: silence


def test_page_hinkley_fires_where_river_alone_fires() -> None:
    """Our signal is river's PageHinkley (mode "down") on the same scores, latched."""
    xs = _scores(0)
    bare = river_drift.PageHinkley(threshold=20.0, delta=0.005, min_instances=30, mode="down")
    first_bare = next(i for i, x in enumerate(xs) if (bare.update(x), bare.drift_detected)[1])
    checks = _run(DriftMonitor(), xs)
    first_ours = next(b for b, c in enumerate(checks) if "page_hinkley" in c.fired)
    assert first_ours == first_bare // BATCH
    assert all("page_hinkley" in c.fired for c in checks[first_ours:])  # latched until reset


def test_a_rise_is_no_drift() -> None:
    checks = _run(DriftMonitor(), _scores(0, before=0.3, after=0.8))
    assert not any(c.alarm for c in checks)
    assert not any({"adwin", "welch", "ks", "page_hinkley"} & set(c.fired) for c in checks)


def test_the_vote_needs_a_strict_majority() -> None:
    total = len(SIGNALS)
    assert [vote_passes(k, total, "majority") for k in range(5)] == [False] * 3 + [True] * 2
    # the seeds' rule, fired >= total // 2, alarms on one signal of three
    assert 1 >= 3 // 2 and not vote_passes(1, 3, "majority")
    assert vote_passes(1, total, "any") and not vote_passes(3, total, "all")
    with pytest.raises(ValueError, match="unknown vote"):
        DriftMonitor(vote="most")  # type: ignore[arg-type]


def test_reset_starts_over_with_a_new_reference() -> None:
    monitor = DriftMonitor(window=32)
    checks = _run(monitor, _scores(1))
    assert checks[-1].alarm
    monitor.reset([0.0, 1.0] * 16)  # the new serving model's first scores
    after = monitor.update([1.0] * 16)
    assert not after.alarm and after.fired == ()
    assert after.reference_mean == pytest.approx(0.5)
