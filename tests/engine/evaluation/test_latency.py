"""The latency gate's measurement: an interval of the p50 ratio, more rounds while it
straddles the budget, inconclusive at the cap, and the machine's load beside the figure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from engine.evaluation import latency as latency_module
from engine.evaluation.latency import measure_latency, ratio_interval, reading
from engine.evaluation.measure import LatencyStats


def _fake_rounds(monkeypatch: pytest.MonkeyPatch, ratio_of_round, noise_of_round, seed=0):
    """Replace the timer: round r gives baseline ~ 10 ms and variant = ratio(r) x baseline,
    each with multiplicative noise(r); records the batches asked for."""
    calls: list[tuple[int, int]] = []
    rng = np.random.default_rng(seed)

    def fake(runners, rounds, warmup=3, on_round=None, first_round=0):
        calls.append((first_round, rounds))
        base, var = [], []
        for k in range(rounds):
            r = first_round + k
            b = 10.0 * (1 + noise_of_round(r) * rng.standard_normal())
            v = 10.0 * ratio_of_round(r) * (1 + noise_of_round(r) * rng.standard_normal())
            base.append(b)
            var.append(v)
            if on_round is not None:
                on_round(k + 1)
        return [LatencyStats(base), LatencyStats(var)]

    monkeypatch.setattr(latency_module, "interleaved_latency", fake)
    return calls


def test_interval_is_scipys_paired_percentile_bootstrap_of_the_median_ratio() -> None:
    rng = np.random.default_rng(4)
    b = rng.gamma(9.0, 1.0, 120)
    v = b * 1.08 * rng.lognormal(0, 0.05, 120)
    ratio, low, high = ratio_interval(b, v, seed=3)
    ref = sps.bootstrap(
        (b, v),
        lambda x, y, axis=-1: np.median(y, axis=axis) / np.median(x, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert ratio == pytest.approx(np.median(v) / np.median(b), rel=1e-12)
    assert (low, high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert low < ratio < high
    assert ratio_interval([5.0] * 10, [6.0] * 10) == (1.2, 1.2, 1.2)  # nothing to resample


def test_reading_against_the_budget() -> None:
    assert reading(1.00, 1.15, 1.15) == "pass"  # at or below the budget
    assert reading(1.1501, 1.3, 1.15) == "fail"
    assert reading(1.10, 1.20, 1.15) == "inconclusive"


def test_a_clear_result_is_decided_on_the_planned_rounds(monkeypatch) -> None:
    calls = _fake_rounds(monkeypatch, lambda r: 1.0, lambda r: 0.02)
    m = measure_latency([None, None], 40, budget=1.15)
    assert m.outcome == "pass" and m.rounds == 40 and calls == [(0, 40)]
    calls = _fake_rounds(monkeypatch, lambda r: 1.5, lambda r: 0.02)
    m = measure_latency([None, None], 40, budget=1.15)
    assert m.outcome == "fail" and m.rounds == 40 and calls == [(0, 40)]
    assert m.high < 1.6 and m.low > 1.15


def test_a_straddling_interval_extends_to_the_cap_then_is_inconclusive(monkeypatch) -> None:
    calls = _fake_rounds(monkeypatch, lambda r: 1.15, lambda r: 0.3)
    batches: list[tuple[int, int]] = []

    def start_batch(first: int, n: int):
        batches.append((first, n))
        return None

    m = measure_latency([None, None], 20, budget=1.15, start_batch=start_batch)
    assert m.outcome == "inconclusive"
    assert m.rounds == m.rounds_cap == 80  # 4 x the planned rounds
    assert calls == batches == [(0, 20), (20, 20), (40, 40)]
    assert m.low <= 1.15 < m.high
    assert len(m.baseline_ms) == len(m.variant_ms) == 80


def test_more_rounds_can_settle_it(monkeypatch) -> None:
    # noisy first rounds, quiet later ones (a load that went away)
    calls = _fake_rounds(monkeypatch, lambda r: 1.0, lambda r: 0.6 if r < 10 else 0.01)
    m = measure_latency([None, None], 10, budget=1.15)
    assert calls[0] == (0, 10) and len(calls) >= 2
    assert m.outcome == "pass" and 10 < m.rounds <= m.rounds_cap


def test_without_a_budget_only_the_planned_rounds_run(monkeypatch) -> None:
    calls = _fake_rounds(monkeypatch, lambda r: 1.15, lambda r: 0.3)
    m = measure_latency([None, None], 12, budget=None)
    assert m.outcome is None and calls == [(0, 12)]


def test_load_is_recorded_with_the_figure(monkeypatch) -> None:
    _fake_rounds(monkeypatch, lambda r: 1.0, lambda r: 0.02)
    load = measure_latency([None, None], 8, budget=1.15).load
    assert set(load) == {
        "load_avg_1m_start",
        "load_avg_1m_end",
        "cpu_count",
        "cpu_busy_share",
        "cpu_steal_share",
    }
    assert 0.0 <= load["cpu_busy_share"] <= 1.0 and 0.0 <= load["cpu_steal_share"] <= 1.0
    assert load["cpu_count"] >= 1


def test_real_rounds_keep_their_index_across_batches() -> None:
    """Measuring 3 then 3 more rounds runs probes 0..5 in ABBA order, as 6 at once would."""
    from engine.evaluation.measure import interleaved_latency

    seen: list[tuple[str, int]] = []
    runners = [lambda r: seen.append(("a", r)), lambda r: seen.append(("b", r))]
    interleaved_latency(runners, 3, warmup=0)
    interleaved_latency(runners, 3, warmup=0, first_round=3)
    assert seen == [
        ("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2),
        ("b", 3), ("a", 3), ("a", 4), ("b", 4), ("b", 5), ("a", 5),
    ]  # fmt: skip
