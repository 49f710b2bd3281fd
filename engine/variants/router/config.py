"""Router variants' settings (AR0 behavioural cloning, AR1 policy gradient).

Every knob that changes a trained arm is a field here, so it enters the arm's adapter key
through the config dump. AR0's training knobs (oracle traces, behavioural cloning, the
experts' orthogonality penalty) sit on the shared `RouterConfig`: AR1's baseline arm is AR0,
built from AR1's config without the AR1-only fields (`PG_ONLY_FIELDS`).

`rank_dimension` is each expert's rank; the router holds `n_experts` of them, so its static
multi-task LoRA baseline gets rank n_experts × r (`baseline_rank_dimension`): the same
trainable parameters up to the small policy and value networks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.variants.config_base import VariantConfig


class RouterConfig(VariantConfig):
    n_experts: int = Field(3, ge=2, description="expert adapters (one per task domain)")
    max_plan_length: int = Field(3, ge=1, description="at most this many actions per sequence")
    chunk_size: int = Field(64, ge=1, description="tokens per routing chunk")
    trust_region_tau: float = Field(1.0, gt=0, description="bound on ‖ΔW‖_F per layer")
    switch_cost: float = Field(0.1, ge=0, description="hysteresis: cost of switching expert")
    hysteresis_tau: float = Field(0.1, ge=0, description="hysteresis: extra margin to switch")
    # 12 keeps policy + value within the ±5% parameter budget against the rank-K·r baseline
    policy_hidden: int = Field(12, ge=1, description="width of the policy and value networks")
    # AR0's training stages (engine.variants.router.arm)
    orthogonality_weight: float = Field(
        0.1, ge=0, description="weight of the experts' orthogonality penalty (0: none)"
    )
    oracle_examples: int = Field(
        256, ge=1, description="oracle traces from this many training examples (K passes each)"
    )
    bc_steps: int = Field(1000, ge=1, description="full-batch Adam steps of behavioural cloning")
    bc_lr: float = Field(3e-2, gt=0, description="behavioural cloning's learning rate")
    bc_restarts: int = Field(
        6, ge=1, description="fresh policy inits cloned; the lowest final BC loss is kept"
    )

    @property
    def baseline_rank_dimension(self) -> int:
        return self.n_experts * self.rank_dimension


class RouterBCConfig(RouterConfig):
    variant: Literal["agentic_router_bc"] = "agentic_router_bc"


class RouterPGConfig(RouterConfig):
    """AR1: AR0's experts and policy (its baseline arm), refined by policy gradient."""

    variant: Literal["agentic_router_pg"] = "agentic_router_pg"
    trust_region_kl: float = Field(0.01, gt=0, description="mean KL bound of one policy update")
    pg_rounds: int = Field(40, ge=1, description="rollout + update rounds (--quick: a quarter)")
    pg_batch_size: int = Field(16, ge=2, description="episodes per round")
    pg_lr: float = Field(0.05, gt=0, description="policy step size before KL backtracking")
    quick_pg_fraction: float = Field(
        0.25, gt=0, le=1, description="--quick runs this share of pg_rounds (at least 2)"
    )
    pg_gamma: float = Field(1.0, gt=0, le=1, description="discount of the per-chunk rewards")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE's bias/variance trade-off")
    value_lr: float = Field(1e-2, gt=0, description="value network's Adam step size")
    value_steps: int = Field(5, ge=1, description="value regression steps per round")
    max_backtracks: int = Field(
        10, ge=0, description="halvings of a policy step before it is rejected for its KL"
    )
    entropy_coef: float = Field(0.0, ge=0, description="entropy bonus in the policy objective")

    def baseline_variant_config(self) -> RouterBCConfig:
        shared = self.model_dump(exclude={"variant", *PG_ONLY_FIELDS})
        return RouterBCConfig(**shared)

    @property
    def warm_starts_from_baseline(self) -> bool:
        return True


PG_ONLY_FIELDS = (
    "trust_region_kl",
    "pg_rounds",
    "pg_batch_size",
    "pg_lr",
    "quick_pg_fraction",
    "pg_gamma",
    "gae_lambda",
    "value_lr",
    "value_steps",
    "max_backtracks",
    "entropy_coef",
)
