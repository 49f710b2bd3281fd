"""The online loop: serve, score, learn in the shadow, promote on the canary, roll back on drift.

Test-then-train (prequential): each live batch is first scored by the serving weights (the
evidence), by the deployed weights (the static baseline's evidence) and by the shadow (the
timeline), and only then does the shadow train on it, so no example is ever scored by
weights that learnt from it. A `canary_fraction` of each batch is never trained on: it joins
the canary window, the recent traffic on which the shadow must prove itself not worse than
the serving weights (and not worse on a probe of the forgetting set) before it is promoted
(`engine.protocols.online.canary`). The drift monitor watches the serving scores
(`engine.protocols.online.drift`); an alarm after a promotion returns serving to the last
good weights (the shadow restarts from them too: whatever it learnt since is suspect).

One model holds the weights: an adapter's trainable weights are small, so deployed, serving,
shadow and last-good are kept as snapshots and swapped in (`regularizers.restore`) rather
than keeping copies of the model and its frozen base.

Everything the loop knows between batches is one `LoopState`; `after_batch` gets it after
every batch (the protocol checkpoints it and stores the batch's timeline point and events),
and a loop started from a restored state goes on at `state.next_batch` exactly as the
uninterrupted loop would have: the shadow's update seeds come from the batch index and the
drift monitor is rebuilt by replaying the scores it was fed since its last reset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from engine.protocols.online.canary import canary_decision
from engine.protocols.online.drift import DriftMonitor
from engine.protocols.online.regularizers import AnchorPenalty, Params, restore, snapshot
from engine.tasks.base import TaskExample

Scores = list[dict[str, float]]  # per example: metric -> value
Score = Callable[[nn.Module, Sequence[TaskExample]], Scores]
Train = Callable[[nn.Module, Sequence[TaskExample], AnchorPenalty, int], float]


@dataclass(frozen=True)
class LoopConfig:
    canary_every: int = 4  # batches between canary decisions
    canary_fraction: float = 0.25  # of each live batch, held out from training as canary
    canary_window: int = 64  # most recent canary examples compared
    margin: float = 0.02  # non-inferiority margin (score units)
    alpha: float = 0.05
    metric: str = "exact_match"  # what the canary and the drift monitor decide on

    def __post_init__(self) -> None:
        if self.canary_every < 1 or not 0 < self.canary_fraction < 1 or self.canary_window < 2:
            raise ValueError("canary_every >= 1, canary_fraction in (0, 1), canary_window >= 2")


@dataclass(frozen=True)
class StreamEvent:
    batch: int  # live batch index
    kind: str  # "canary", "promotion", "drift_alarm", "rollback"
    detail: str


@dataclass(frozen=True)
class TimelinePoint:
    batch: int
    phase: str
    serving: float  # mean decision metric of the batch under each set of weights
    shadow: float
    deployed: float
    serving_source: str  # "deployed" or "shadow@<batch it was promoted at>"


@dataclass(frozen=True)
class CanaryRow:
    batch: int
    canary_n: int
    canary_diff: float  # mean(shadow - serving)
    canary_p: float
    forgetting_n: int
    forgetting_diff: float
    forgetting_p: float
    promote: bool
    serving_source: str  # the weights the shadow was compared with


@dataclass
class LoopRecord:
    """What the loop saw: each live example's scores under the serving and under the
    deployed weights (the paired evidence), by id; the timeline; every event and canary
    decision; which ids trained the shadow."""

    serving_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    deployed_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    timeline: list[TimelinePoint] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    canaries: list[CanaryRow] = field(default_factory=list)
    trained_on: list[str] = field(default_factory=list)


@dataclass
class LoopState:
    """The loop between two batches: enough to go on from `next_batch` after a crash."""

    weights: dict[str, Params]  # "deployed", "serving", "shadow" and maybe "last_good"
    serving_source: str = "deployed"
    last_good_source: str | None = None
    next_batch: int = 0
    canary: list[TaskExample] = field(default_factory=list)
    monitor_feed: list[list[float]] = field(default_factory=list)  # since its last reset
    record: LoopRecord = field(default_factory=LoopRecord)

    @classmethod
    def start(cls, model: nn.Module) -> LoopState:
        """The state before the first live batch: every slot holds the model's weights."""
        deployed = snapshot(model)
        return cls({"deployed": deployed, "serving": deployed, "shadow": snapshot(model)})


AfterBatch = Callable[[int, LoopState, TimelinePoint, list[StreamEvent]], None]


def canary_split(batch: Sequence[TaskExample], fraction: float) -> tuple[list, list]:
    """(canary, train): the first ceil(fraction · n) examples are the canary (the stream is
    already shuffled by its generator, so the first ones are as good as any)."""
    k = min(len(batch) - 1, max(1, math.ceil(fraction * len(batch))))
    return list(batch[:k]), list(batch[k:])


def run_live(
    model: nn.Module,
    live: Sequence[Sequence[TaskExample]],
    forgetting_probe: Sequence[TaskExample],
    *,
    score: Score,
    train: Train,
    penalty: AnchorPenalty,
    monitor: DriftMonitor,
    config: LoopConfig,
    state: LoopState | None = None,
    after_batch: AfterBatch | None = None,
) -> LoopState:
    """Run the live part of the stream: from the deployed weights now in `model`, or from a
    restored `state`; on return `model` holds the final serving weights."""
    state = state or LoopState.start(model)
    record, weights, metric = state.record, state.weights, config.metric
    penalty.anchor = weights["deployed"]  # restored or fresh: the pull is to the deployed
    monitor.reset([])
    for fed in state.monitor_feed:  # the monitor as it was: same scores, same order
        monitor.update(fed)
    probe_cache: dict[str, list[float]] = {}  # serving source -> its forgetting-probe scores

    def scores_of(slot: str, examples: Sequence[TaskExample]) -> Scores:
        restore(model, weights[slot])
        return score(model, examples)

    def column(scores: Scores) -> list[float]:
        return [s[metric] for s in scores]

    for b in range(state.next_batch, len(live)):
        batch = live[b]
        events: list[StreamEvent] = []
        served = scores_of("serving", batch)
        record.serving_scores.update({ex.id: s for ex, s in zip(batch, served, strict=True)})
        base = served if state.serving_source == "deployed" else scores_of("deployed", batch)
        record.deployed_scores.update({ex.id: s for ex, s in zip(batch, base, strict=True)})
        shadow_scores = scores_of("shadow", batch)
        point = TimelinePoint(
            b,
            str(batch[0].features.get("phase", "")) if batch else "",
            _mean(column(served)),
            _mean(column(shadow_scores)),
            _mean(column(base)),
            state.serving_source,
        )
        record.timeline.append(point)
        held, to_train = canary_split(batch, config.canary_fraction)
        state.canary = (state.canary + held)[-config.canary_window :]
        restore(model, weights["shadow"])
        train(model, to_train, penalty, b)
        record.trained_on.extend(ex.id for ex in to_train)
        weights["shadow"] = snapshot(model)

        check = monitor.update(column(served))
        state.monitor_feed.append(column(served))
        if check.alarm:
            events.append(StreamEvent(b, "drift_alarm", f"signals: {', '.join(check.fired)}"))
            if "last_good" in weights:
                weights["serving"] = weights.pop("last_good")
                weights["shadow"] = dict(weights["serving"])
                state.serving_source = state.last_good_source or "deployed"
                state.last_good_source = None
                events.append(
                    StreamEvent(b, "rollback", f"serving returned to {state.serving_source}")
                )
            monitor.reset([])
            state.monitor_feed = []

        if (b + 1) % config.canary_every == 0 and len(state.canary) >= 2:
            window = list(state.canary)
            if state.serving_source not in probe_cache:
                probe_cache[state.serving_source] = column(scores_of("serving", forgetting_probe))
            decision = canary_decision(
                column(scores_of("shadow", window)),
                column(scores_of("serving", window)),
                column(scores_of("shadow", forgetting_probe)),
                probe_cache[state.serving_source],
                margin=config.margin,
                alpha=config.alpha,
            )
            c, f = decision.canary, decision.forgetting
            record.canaries.append(
                CanaryRow(
                    b,
                    c.n,
                    c.mean_diff,
                    c.p_value,
                    f.n,
                    f.mean_diff,
                    f.p_value,
                    decision.promote,
                    state.serving_source,
                )  # fmt: skip
            )
            events.append(StreamEvent(b, "canary", decision.reason))
            if decision.promote:
                weights["last_good"] = weights["serving"]
                state.last_good_source = state.serving_source
                weights["serving"] = dict(weights["shadow"])
                state.serving_source = f"shadow@{b}"
                events.append(StreamEvent(b, "promotion", f"shadow@{b} now serves"))
                monitor.reset([])
                state.monitor_feed = []
        record.events.extend(events)
        state.next_batch = b + 1
        if after_batch is not None:
            after_batch(b, state, point, events)
    restore(model, weights["serving"])
    return state


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
