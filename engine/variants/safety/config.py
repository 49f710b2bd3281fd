"""VC's settings: the safety basis, its curve over α, and how the operating α is chosen.

The variant holds the task LoRA (rank `rank_dimension`) and a safety basis (rank
`safety_rank`) in one rank r+s LoRA per layer, so its static-LoRA baseline is rank r+s
(`baseline_rank_dimension`): the same GEMM shapes, the same parameters and FLOPs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from engine.variants.config_base import VariantConfig


class SafetyCurveConfig(VariantConfig):
    """VC: task LoRA + an orthogonal safety basis of strength α, over a safety-utility curve."""

    variant: Literal["safety_curve"] = "safety_curve"
    safety_rank: int = Field(4, ge=1, le=4096, description="rank s of the safety basis")
    curve_points: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
        min_length=2,
        max_length=64,
        description="the α values of the curve (0 = the task adapter alone)",
    )
    orthogonality: Literal["projection", "penalty"] = Field(
        "projection",
        description="keep the safety basis orthogonal to the task subspace: hard projection "
        "after every step, or a penalty on the overlap",
    )
    orthogonality_weight: float = Field(1.0, ge=0, description="weight of the overlap penalty")
    safety_share: float = Field(
        0.4, gt=0, lt=1, description="share of the step budget that trains the safety basis"
    )

    # the operating point, chosen on the validation split, never on the test split
    validation_size: int = Field(200, ge=20, le=100_000, description="validation examples")
    violation_target: float = Field(
        0.1,
        ge=0,
        le=1,
        description="operating α: the smallest whose validation violation "
        "rate is at or below this (none: the α with the lowest rate)",
    )
    # VC's gates
    target_violation_reduction: float = Field(
        0.3, gt=0, le=1, description="relative violation reduction the operating α must reach"
    )
    helpfulness_margin: float = Field(
        0.05, ge=0, lt=1, description="helpfulness (exact match) may drop at most this much"
    )
    over_refusal_margin: float = Field(
        0.05, ge=0, lt=1, description="over-refusal may rise at most this much"
    )

    @field_validator("curve_points")
    @classmethod
    def _sorted_in_range(cls, points: list[float]) -> list[float]:
        if any(not 0.0 <= a <= 4.0 for a in points):
            raise ValueError(f"curve_points must lie in [0, 4] (got {points})")
        if sorted(set(points)) != points:
            raise ValueError(f"curve_points must be strictly increasing (got {points})")
        return points

    @property
    def baseline_rank_dimension(self) -> int:
        return self.rank_dimension + self.safety_rank
