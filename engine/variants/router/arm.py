"""Training one router arm inside an experiment run.

The runner trains every other arm with `engine.training.train_adapter`; the router needs
stages (issue 7), so RouterModel.train_arm routes here. Every knob of the stages is a field
of the arm's config (`engine.variants.router.config`), so it enters the adapter key.

- AR0 (`train_router_arm`): experts, then oracle traces, then behavioural cloning. The expert
  stage gets the run's step budget and streams its losses like any arm.
- AR1 (`train_pg_arm`): the runner has loaded the trained AR0 arm (experts and policy) into
  the model first (`warm_starts_from_baseline`); only the policy and value networks then
  learn, by policy gradient rounds on rollouts of the training examples. A round's step row
  records loss = -(mean episode reward), so the curve falls as the reward rises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from engine.models.tokenizer import TextTokenizer
from engine.router.policy import MacroPolicy
from engine.tasks.base import Task, TaskExample
from engine.tasks.mixed import DOMAINS
from engine.training import TrainPlan
from engine.variants.router.experts import train_experts
from engine.variants.router.oracle import oracle_traces, train_bc, with_any_previous_action
from engine.variants.router.pg import RoundStats, train_pg
from store.errors import BemctlError


def pg_rounds(config, plan: TrainPlan) -> int:
    """AR1's round count for this run (the step total its progress and curve show); --quick
    runs `quick_pg_fraction` of the configured rounds."""
    if plan.quick:
        return max(2, round(config.pg_rounds * config.quick_pg_fraction))
    return config.pg_rounds


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
    if model.config.n_experts != len(DOMAINS):
        raise BemctlError(
            f"bem_config.n_experts is {model.config.n_experts}, but the router trains one "
            f"expert per domain of synthetic_mixed ({', '.join(DOMAINS)}): it needs "
            f"n_experts: {len(DOMAINS)}"
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
        orthogonality_weight=model.config.orthogonality_weight,
    )
    say(f"experts trained: mean off-diagonal overlap {experts.mean_off_diagonal_overlap:.3f}")
    examples = train[: model.config.oracle_examples]
    traces = oracle_traces(model, tokenizer, task, examples, device, plan.max_length)
    states, actions = with_any_previous_action(model, traces)
    bc = _bc_with_restarts(model, states, actions, plan.seed)
    say(
        f"AR0 behavioural cloning: expert-head accuracy {bc.accuracy['expert']:.3f} on "
        f"{len(traces.states)} oracle decisions ({len(states)} rows with every previous expert)"
    )
    model.eval()
    return experts.final_loss


def _bc_with_restarts(model, states: torch.Tensor, actions: torch.Tensor, seed: int):
    """Behavioural cloning from `bc_restarts` fresh policy inits (`bc_steps` full-batch Adam
    steps at `bc_lr` each; the config's), keeping the lowest final loss.

    Why restarts: on the embedded model's oracle states the expert head often stays on the
    uniform plateau (loss ln 3) from a fresh init, whatever the step count; measured on one
    set of quick-run traces, 1,000 full-batch Adam steps at lr 3e-2 reached 0.87 accuracy from
    2 of 4 inits and stayed at 0.375 from the others (lr 1e-2: 1 of 4). A restart costs ~2 s.
    """
    device = next(model.policy.parameters()).device
    best, best_policy = None, None
    config = model.config
    for restart in range(config.bc_restarts):
        torch.manual_seed(seed + restart)
        model.policy = MacroPolicy(model.space, model.state_dim, config.policy_hidden)
        model.policy.to(device)
        result = train_bc(model, states, actions, config.bc_steps, config.bc_lr, seed + restart)
        if best is None or result.losses[-1] < best.losses[-1]:
            best, best_policy = result, model.policy
    model.policy = best_policy
    return best


def train_pg_arm(
    model,
    tokenizer: TextTokenizer,
    task: Task,
    train: Sequence[TaskExample],
    plan: TrainPlan,
    device: torch.device,
    on_step: Callable[[int, float, float, float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> float:
    """AR1 rounds from the AR0 state already loaded; returns the last round's loss
    (-(mean reward)). The experts stay as AR0 left them: rollouts run without gradients and
    the updates only step the policy's and the value network's parameters."""
    if plan.max_new_tokens < 1:
        raise BemctlError("AR1 rollouts need data.max_new_tokens >= 1")
    config = model.config
    say = log or (lambda message: None)
    started = time.perf_counter()

    def on_round(row: RoundStats) -> None:
        if on_step is not None:
            on_step(row.round, -row.mean_reward, config.pg_lr, time.perf_counter() - started)
        verdict = "accepted" if row.accepted else f"rejected ({row.reason})"
        say(
            f"AR1 round {row.round}: reward {row.mean_reward:.3f} "
            f"(format {row.format_validity:.2f}, EM {row.exact_match:.2f}), KL {row.kl:.4f} "
            f"{verdict}, plan length {row.plan_length:.2f}, switch rate {row.switch_rate:.2f}"
        )

    rounds = train_pg(
        model,
        tokenizer,
        task,
        train,
        device,
        rounds=pg_rounds(config, plan),
        kl_bound=config.trust_region_kl,
        lr=config.pg_lr,
        seed=plan.seed,
        max_new_tokens=plan.max_new_tokens,
        max_length=plan.max_length,
        batch_size=config.pg_batch_size,
        value_lr=config.value_lr,
        value_steps=config.value_steps,
        gamma=config.pg_gamma,
        lam=config.gae_lambda,
        max_backtracks=config.max_backtracks,
        entropy_coef=config.entropy_coef,
        on_round=on_round,
    )
    accepted = sum(r.accepted for r in rounds)
    say(f"AR1: {accepted}/{len(rounds)} policy updates accepted within KL {config.trust_region_kl}")
    model.eval()
    return -rounds[-1].mean_reward
