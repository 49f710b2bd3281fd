"""OL's settings: the stream, the shadow's learning, the canary, the drift monitor.

The adapter itself is a static LoRA of the shared geometry (the deployed adapter, trained on
the stream's history part); what makes OL a variant is what happens after deployment, so
every knob of that is a field here and enters the spec hash and the adapter key.

Sizes: the history part is the plan's training examples (`data.train_size`, `--quick`: the
[quick] sizes), the deployed adapter trains the plan's steps on it; the forgetting set has
`data.eval_size` examples of the history's world; the live part is `live_batches` batches of
`stream_batch_size` (`--quick`: `quick_live_batches`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from engine.variants.config_base import VariantConfig


class OnlineShadowConfig(VariantConfig):
    """OL: online shadow learning with EWC/proximal anchor, canary gate, drift rollback."""

    variant: Literal["online_shadow"] = "online_shadow"
    # the stream
    live_batches: int = Field(96, ge=4, le=2000, description="live batches (full runs)")
    quick_live_batches: int = Field(24, ge=4, le=2000, description="live batches under --quick")
    stream_batch_size: int = Field(16, ge=4, le=512, description="examples per live batch")
    stream_file: str | None = Field(
        None,
        description="JSONL stream (one example per line, in stream order) instead of the "
        "synthetic one; relative paths resolve against the spec's folder",
    )
    poison_batches: list[int] = Field(
        default_factory=list,
        max_length=2000,
        description="fault injection: live batches whose answers are scrambled",
    )
    # the shadow's learning
    ol_regularizer: Literal["ewc", "prox"] = Field(
        "ewc", description="anchor to the deployed weights: EWC (diagonal Fisher) or proximal"
    )
    ewc_lambda: float = Field(0.1, ge=0, description="weight of the anchor penalty")
    fisher_examples: int = Field(
        128, ge=1, le=100_000, description="history examples the diagonal Fisher is estimated on"
    )
    shadow_steps: int = Field(2, ge=1, le=100, description="AdamW steps per live batch")
    shadow_learning_rate: float = Field(2e-3, gt=0, description="the shadow's learning rate")
    # the canary gate
    canary_every: int = Field(4, ge=1, description="live batches between canary decisions")
    canary_fraction: float = Field(
        0.5, gt=0, lt=1, description="share of each live batch held out as canary traffic"
    )
    # 64 canary examples and a 0.02 margin could not show non-inferiority in any of 120
    # decisions of two measured runs (README, OL): the canary must be able to pass
    canary_window: int = Field(128, ge=2, description="most recent canary examples compared")
    canary_forgetting_examples: int = Field(
        128, ge=2, description="forgetting-set examples each canary decision also compares on"
    )
    non_inferiority_margin: float = Field(
        0.05, ge=0, lt=1, description="shadow may be at most this much worse (score units)"
    )
    canary_alpha: float = Field(0.05, gt=0, lt=1, description="level of the canary's tests")
    # the drift monitor and rollback
    drift_window: int = Field(48, ge=2, description="scores in the Welch/KS windows")
    drift_alpha: float = Field(0.01, gt=0, lt=1, description="level of the Welch/KS tests")
    drift_vote: Literal["majority", "any", "all"] = Field(
        "majority", description="how many of the 4 drift signals an alarm needs"
    )
    rollback_within: int = Field(
        2, ge=0, description="batches within which an alarm after a promotion is rolled back"
    )

    @model_validator(mode="after")
    def _poison_inside_stream(self) -> OnlineShadowConfig:
        bad = [b for b in self.poison_batches if not 0 <= b < self.live_batches]
        if bad:
            raise ValueError(
                f"poison_batches {bad[:3]} outside the live stream 0..{self.live_batches - 1}"
            )
        return self

    def live_batch_count(self, quick: bool) -> int:
        return min(self.quick_live_batches, self.live_batches) if quick else self.live_batches
