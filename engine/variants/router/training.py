"""The router's training stages in order, for the experiment runner to call.

1. `train_experts` (engine.variants.router.experts): expert k learns domain k by teacher
   forcing, optionally with an orthogonality penalty between the experts' U factors.
2. `oracle_traces` (engine.variants.router.oracle): a greedy oracle scores every expert on
   each chunk and labels it; states are built as `RouterModel.plan` builds them.
3. `train_bc` (engine.variants.router.oracle): AR0, behavioural cloning of the traces.
4. `train_pg` (engine.variants.router.pg): AR1, policy gradient with GAE and a KL trust region,
   starting from AR0's policy.

These take a `RouterModel`, a tokenizer and a task, and nothing of the store or the runner.
"""

from engine.variants.router.experts import (
    ExpertStageResult,
    expert_losses,
    orthogonality_penalty,
    train_experts,
)
from engine.variants.router.oracle import OracleTraces, oracle_traces, train_bc
from engine.variants.router.pg import Rollout, RoundStats, collect_rollouts, pg_update, train_pg

__all__ = [
    "ExpertStageResult",
    "OracleTraces",
    "RoundStats",
    "Rollout",
    "collect_rollouts",
    "expert_losses",
    "oracle_traces",
    "orthogonality_penalty",
    "pg_update",
    "train_bc",
    "train_experts",
    "train_pg",
]
