"""The online loop: serve, score, learn in the shadow, promote on the canary, roll back on drift.

Test-then-train (prequential): each live batch is first scored by the serving weights (the
evidence) and by the shadow (the timeline), and only then does the shadow train on it, so
no example is ever scored by weights that learnt from it. A `canary_fraction` of each batch
is never trained on: it joins the canary window, the recent traffic on which the shadow must
prove itself not worse than the serving weights (and not worse on the forgetting set) before
it is promoted (`engine.protocols.online.canary`). The drift monitor watches the serving
scores (`engine.protocols.online.drift`); an alarm after a promotion returns serving to the
last good weights (the shadow restarts from them too: whatever it learnt since is suspect).

One model holds the weights: an adapter's trainable weights are small, so serving, shadow
and last-good are kept as snapshots and swapped in (`regularizers.restore`) rather than
keeping copies of the model and its frozen base. The caller provides `score` (per-example
scores of the weights in the model) and `train` (one update of the shadow on a batch, with
the penalty pulling it to the deployed weights).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from engine.protocols.online.canary import canary_decision
from engine.protocols.online.drift import DriftMonitor
from engine.protocols.online.regularizers import AnchorPenalty, Params, restore, snapshot
from engine.tasks.base import TaskExample

Score = Callable[[nn.Module, Sequence[TaskExample]], list[float]]
Train = Callable[[nn.Module, Sequence[TaskExample], AnchorPenalty], float]


@dataclass(frozen=True)
class LoopConfig:
    canary_every: int = 4  # batches between canary decisions
    canary_fraction: float = 0.25  # of each live batch, held out from training as canary
    canary_window: int = 64  # most recent canary examples compared
    margin: float = 0.02  # non-inferiority margin (score units)
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.canary_every < 1 or not 0 < self.canary_fraction < 1 or self.canary_window < 2:
            raise ValueError("canary_every >= 1, canary_fraction in (0, 1), canary_window >= 2")


@dataclass(frozen=True)
class StreamEvent:
    batch: int  # live batch index
    kind: str  # "canary", "promotion", "drift_alarm", "rollback"
    detail: str


@dataclass
class LoopRecord:
    """What the loop saw: per live batch the serving and shadow means; every event; each
    live example's serving score (the paired evidence) by id; which ids trained the shadow."""

    serving_scores: dict[str, float] = field(default_factory=dict)
    deployed_scores: dict[str, float] = field(default_factory=dict)  # the static baseline
    timeline: list[tuple[int, float, float]] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    trained_on: list[str] = field(default_factory=list)


def canary_split(batch: Sequence[TaskExample], fraction: float) -> tuple[list, list]:
    """(canary, train): the first ceil(fraction · n) examples are the canary (the stream is
    already shuffled by its generator, so the first ones are as good as any)."""
    k = min(len(batch) - 1, max(1, math.ceil(fraction * len(batch))))
    return list(batch[:k]), list(batch[k:])


def run_live(
    model: nn.Module,
    live: Sequence[Sequence[TaskExample]],
    forgetting: Sequence[TaskExample],
    *,
    score: Score,
    train: Train,
    penalty: AnchorPenalty,
    monitor: DriftMonitor,
    config: LoopConfig,
) -> LoopRecord:
    """Run the live part of the stream from the deployed weights now in `model`; on return
    `model` holds the final serving weights."""
    deployed = snapshot(model)
    serving: Params = deployed
    shadow: Params = snapshot(model)
    last_good: Params | None = None  # serving before the latest promotion
    canary: deque[TaskExample] = deque(maxlen=config.canary_window)
    record = LoopRecord()

    def scores_of(weights: Params, examples: Sequence[TaskExample]) -> list[float]:
        restore(model, weights)
        return score(model, examples)

    for b, batch in enumerate(live):
        served = scores_of(serving, batch)
        record.serving_scores.update({ex.id: s for ex, s in zip(batch, served, strict=True)})
        base = served if serving is deployed else scores_of(deployed, batch)
        record.deployed_scores.update({ex.id: s for ex, s in zip(batch, base, strict=True)})
        shadow_scores = scores_of(shadow, batch)
        record.timeline.append((b, _mean(served), _mean(shadow_scores)))
        held, to_train = canary_split(batch, config.canary_fraction)
        canary.extend(held)
        restore(model, shadow)
        train(model, to_train, penalty)
        record.trained_on.extend(ex.id for ex in to_train)
        shadow = snapshot(model)

        check = monitor.update(served)
        if check.alarm:
            fired = ", ".join(check.fired)
            record.events.append(StreamEvent(b, "drift_alarm", f"signals: {fired}"))
            if last_good is not None:
                serving, shadow, last_good = last_good, dict(last_good), None
                record.events.append(
                    StreamEvent(b, "rollback", "serving returned to the last good weights")
                )
            monitor.reset([])

        if (b + 1) % config.canary_every == 0 and len(canary) >= 2:
            window = list(canary)
            decision = canary_decision(
                scores_of(shadow, window),
                scores_of(serving, window),
                scores_of(shadow, forgetting),
                scores_of(serving, forgetting),
                margin=config.margin,
                alpha=config.alpha,
            )
            record.events.append(StreamEvent(b, "canary", decision.reason))
            if decision.promote:
                last_good, serving = serving, dict(shadow)
                record.events.append(StreamEvent(b, "promotion", "shadow now serves"))
                monitor.reset([])
    restore(model, serving)
    return record


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
