"""The latency gate's evidence: the p50 ratio with its uncertainty, measured until it decides.

A single p50 ratio flips on machine noise: the same V1 quick run read x1.174 on a loaded
machine (p95 13x its p50) and passed on a quiet one. So the ratio gets a paired bootstrap
interval over the interleaved rounds (round r times baseline and variant back to back, so
they share that moment's load), and the gate decides only on what the interval says:
FAIL when it lies above the budget, PASS when below. When it straddles the budget, more rounds
are measured (doubling, up to a cap), and if it still straddles the gate is inconclusive,
never a silent REJECT. The machine's load while measuring is recorded beside the figure.

Percentile rather than BCa bootstrap: BCa's acceleration comes from a jackknife, which is
unreliable for the median (a non-smooth statistic: leave-one-out medians take two values).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import psutil
from scipy import stats as sps

from engine.evaluation.measure import interleaved_latency

LATENCY_CONFIDENCE = 0.95
LATENCY_RESAMPLES = 2000
ROUNDS_CAP_FACTOR = 4  # a straddling interval may extend the rounds to this x the planned


@dataclass(frozen=True)
class LatencyMeasurement:
    """Both arms' per-round latencies (ms, same round index = same moment) and their p50
    ratio's interval; `outcome` is the gate's reading against `budget`."""

    baseline_ms: list[float]
    variant_ms: list[float]
    ratio: float | None
    low: float | None
    high: float | None
    confidence_level: float
    rounds_planned: int
    rounds_cap: int
    budget: float | None
    outcome: str | None  # "pass" | "fail" | "inconclusive"; None without a budget
    load: dict = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return len(self.baseline_ms)

    def to_dict(self) -> dict:
        return asdict(self)


def ratio_interval(
    baseline_ms: Sequence[float],
    variant_ms: Sequence[float],
    confidence: float = LATENCY_CONFIDENCE,
    n_resamples: int = LATENCY_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(p50 ratio, low, high): paired percentile bootstrap of median(variant)/median(baseline),
    resampling whole rounds."""
    b = np.asarray(baseline_ms, dtype=float)
    v = np.asarray(variant_ms, dtype=float)
    ratio = float(np.median(v) / np.median(b))
    if b.size < 2 or (np.ptp(b) == 0 and np.ptp(v) == 0):
        return ratio, ratio, ratio  # nothing to resample: the point is all there is

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(y, axis=axis) / np.median(x, axis=axis)

    result = sps.bootstrap(
        (b, v),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return ratio, float(ci.low), float(ci.high)


def reading(low: float, high: float, budget: float) -> str:
    """The gate's outcome for a ratio interval against a budget."""
    if high <= budget:
        return "pass"
    if low > budget:
        return "fail"
    return "inconclusive"


class LoadWatch:
    """Load average and CPU steal over a measurement window (context for its figures)."""

    def __enter__(self) -> LoadWatch:
        self._start_load = _load_1m()
        self._start_times = psutil.cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        end = psutil.cpu_times()
        deltas = {
            name: getattr(end, name) - getattr(self._start_times, name) for name in end._fields
        }
        total = sum(deltas.values()) or 1.0
        idle = deltas.get("idle", 0.0) + deltas.get("iowait", 0.0)
        self.reading = {
            "load_avg_1m_start": self._start_load,
            "load_avg_1m_end": _load_1m(),
            "cpu_count": os.cpu_count(),
            "cpu_busy_share": round(1.0 - idle / total, 4),  # every process, this one included
            "cpu_steal_share": round(deltas.get("steal", 0.0) / total, 4),
        }


def _load_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def measure_latency(
    runners: Sequence[Callable[[int], object]],
    rounds: int,
    budget: float | None,
    rounds_cap: int | None = None,
    seed: int = 0,
    start_batch: Callable[[int, int], Callable[[int], None] | None] | None = None,
) -> LatencyMeasurement:
    """Interleave `runners` (baseline, variant) for `rounds` rounds; while the ratio's
    interval straddles `budget`, measure as many rounds again, up to `rounds_cap` in all.
    `start_batch(first_round, n_rounds)` is called before each batch of rounds and may return
    a per-round progress callback (the first batch is the planned one, later ones extend)."""
    cap = max(rounds, rounds_cap if rounds_cap is not None else rounds * ROUNDS_CAP_FACTOR)
    samples: list[list[float]] = [[], []]
    total = rounds
    with LoadWatch() as load:
        warmup = 3
        while True:
            done = len(samples[0])
            batch = interleaved_latency(
                runners,
                total - done,
                warmup=warmup,
                first_round=done,
                on_round=start_batch(done, total - done) if start_batch else None,
            )
            warmup = 0
            for mine, more in zip(samples, batch, strict=True):
                mine.extend(more.samples_ms)
            ratio, low, high = ratio_interval(*samples, seed=seed)
            outcome = reading(low, high, budget) if budget is not None else None
            if outcome != "inconclusive" or total >= cap:
                break
            total = min(cap, 2 * total)
    return LatencyMeasurement(
        baseline_ms=samples[0],
        variant_ms=samples[1],
        ratio=ratio,
        low=low,
        high=high,
        confidence_level=LATENCY_CONFIDENCE,
        rounds_planned=rounds,
        rounds_cap=cap,
        budget=budget,
        outcome=outcome,
        load=load.reading,
    )
