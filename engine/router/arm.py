"""Training one router arm inside an experiment run: experts, then oracle traces, then AR0.

The runner trains every other arm with `engine.training.train_adapter`; the router needs
stages (issue 7), so RouterModel.train_arm routes here. The expert stage gets the run's step
budget and streams its losses like any arm; the oracle and behavioural cloning follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from bemctl.errors import BemctlError
from engine.models.tokenizer import TextTokenizer
from engine.router.experts import train_experts
from engine.router.oracle import oracle_traces, train_bc
from engine.tasks.base import Task, TaskExample
from engine.training import TrainPlan

ORACLE_EXAMPLES = 256  # traces from this many training examples (K passes per chunk each)
BC_STEPS = 500
BC_LR = 1e-2
ORTHOGONALITY_WEIGHT = 0.1


def train_router_arm(
    model,
    tokenizer: TextTokenizer,
    task: Task,
    train: Sequence[TaskExample],
    plan: TrainPlan,
    device: torch.device,
    on_step: Callable[[int, float, float, float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> float:
    """Experts (plan.steps steps), oracle traces, behavioural cloning; returns the last
    expert-stage loss. Needs a task whose examples name their domain (synthetic_mixed)."""
    if not train or "domain" not in train[0].features:
        raise BemctlError(
            f"the router needs a task whose examples name their domain (data.task: "
            f"synthetic_mixed), not {task.name!r}"
        )
    say = log or (lambda message: None)
    experts = train_experts(
        model,
        tokenizer,
        task,
        train,
        plan,
        device,
        on_step,
        orthogonality_weight=ORTHOGONALITY_WEIGHT,
    )
    say(f"experts trained: mean off-diagonal overlap {experts.mean_off_diagonal_overlap:.3f}")
    traces = oracle_traces(model, tokenizer, task, train[:ORACLE_EXAMPLES], device, plan.max_length)
    bc = train_bc(model, traces.states, traces.actions, BC_STEPS, BC_LR, plan.seed)
    say(f"AR0 behavioural cloning: expert-head accuracy {bc.accuracy['expert']:.3f} on "
        f"{len(traces.states)} oracle decisions")
    model.eval()
    return experts.final_loss
