"""AR1: policy gradient on the router's macro-policy, with a value baseline, GAE and a KL
trust region (`engine.router.trust_region.kl_bounded_update`).

One round:
1. Rollout: for each prompt of the round's batch, the policy *samples* a proposal at each
   chunk boundary (seeded generator) through `RouterModel.plan`, so hysteresis and the plan
   cap apply exactly as at inference; the proposal's state, head indices and log-probability
   are recorded (a vetoed proposal is still the policy's action: the veto is the
   environment's). The answer is then generated greedily with that plan fixed
   (`forced_plans`), so decoding never re-samples a decision.
2. Reward: format_validity + exact_match of the answer (0..2), given once per episode at its
   last decision and 0 at earlier ones. The answer is produced after every decision, so
   which decision earned it is exactly what the value baseline and GAE (γ = 1 by default)
   sort out; a per-chunk reward would need per-chunk metrics the task does not define.
3. Advantages by GAE on V(s) from `model.value`, normalised over the batch; one
   KL-bounded policy step (mean KL(π_old ‖ π_new) <= kl_bound, else shrink, else reject with
   the policy restored bit for bit); then a few regression steps of the value network on
   the GAE returns.

Prompt chunks are decided from the prompt (`engine.variants.prompt_routing`), exactly as at
inference's prefill. Simplification (documented, not hidden): decisions are made for the
prompt's chunks only; a chunk the answer runs into after the prompt keeps the last action, as
forced plans do, while inference decides it from the chunk before it. Deciding it here would
need the policy inside the decoding loop. With 64-token chunks and answers of at most 30
tokens that is at most one extra chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.evaluation.generation import greedy_generate
from engine.models.tokenizer import TextTokenizer
from engine.router.gae import gae, normalize_advantages
from engine.router.plan import SequencePlan, mean_plan_length, switch_rate
from engine.router.trust_region import UpdateResult, kl_bounded_update, value_update
from engine.tasks.base import Task, TaskExample

if TYPE_CHECKING:
    from engine.variants.router.model import RouterModel

REWARD_METRICS: tuple[str, ...] = ("format_validity", "exact_match")


@dataclass(frozen=True)
class Rollout:
    """A batch of episodes, padded to (B, T) decisions; rows are flattened where valid."""

    states: torch.Tensor  # (B, T, state_dim)
    actions: torch.Tensor  # (B, T, 4) proposed head indices
    log_probs: torch.Tensor  # (B, T) log-probabilities of the proposals when sampled
    rewards: torch.Tensor  # (B, T): the episode's reward at its last decision, else 0
    mask: torch.Tensor  # (B, T) bool, True on each episode's decisions
    episode_rewards: list[float]
    metrics: dict[str, list[float]]  # per reward metric, one value per episode
    plans: list[SequencePlan]
    predictions: list[str]


@dataclass(frozen=True)
class RoundStats:
    """What one AR1 round did (plain numbers, ready for a step_metric row)."""

    round: int
    mean_reward: float
    format_validity: float
    exact_match: float
    kl: float
    accepted: bool
    n_backtracks: int
    step_fraction: float
    reason: str
    value_loss: float
    n_decisions: int
    plan_length: float
    switch_rate: float


@torch.no_grad()
def collect_rollouts(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    device: torch.device,
    generator: torch.Generator,
    *,
    max_new_tokens: int,
    max_length: int,
    reward_metrics: Sequence[str] = REWARD_METRICS,
) -> Rollout:
    """Sample one episode per example with the current policy (module doc, steps 1-2)."""
    model.eval()
    room = max(1, max_length - max_new_tokens)  # greedy_generate's prompt truncation
    records, plans, predictions = [], [], []
    metrics: dict[str, list[float]] = {m: [] for m in reward_metrics}
    try:
        for example in examples:
            ids = torch.tensor([tokenizer.encode(example.prompt)[-room:]], device=device)
            previous, evidence = model.chunk_states(ids, torch.tensor([ids.shape[1]]))
            record: list = []
            plan = model.plan(previous[0], evidence[0], generator=generator, record=record)
            model.forced_plans = [list(plan.chunk_actions)]
            prediction = greedy_generate(
                model, tokenizer, example.prompt, max_new_tokens, device, max_length
            )
            model.forced_plans = None
            for metric in reward_metrics:
                metrics[metric].append(task.score_example(metric, prediction, example))
            records.append(record)
            plans.append(plan)
            predictions.append(prediction)
    finally:
        model.forced_plans = None
    episode_rewards = [sum(metrics[m][i] for m in reward_metrics) for i in range(len(examples))]
    steps = max(len(r) for r in records)
    batch = len(records)
    states = torch.zeros(batch, steps, model.state_dim)
    actions = torch.zeros(batch, steps, 4, dtype=torch.long)
    log_probs = torch.zeros(batch, steps)
    rewards = torch.zeros(batch, steps)
    mask = torch.zeros(batch, steps, dtype=torch.bool)
    for b, record in enumerate(records):
        for t, decision in enumerate(record):
            states[b, t] = decision.state.cpu()
            actions[b, t] = decision.indices.cpu()
            log_probs[b, t] = decision.log_prob
            mask[b, t] = True
        rewards[b, len(record) - 1] = episode_rewards[b]
    return Rollout(
        states, actions, log_probs, rewards, mask, episode_rewards, metrics, plans, predictions
    )


def pg_update(
    model: RouterModel,
    rollout: Rollout,
    value_optimizer: torch.optim.Optimizer,
    *,
    kl_bound: float,
    lr: float,
    gamma: float = 1.0,
    lam: float = 0.95,
    value_steps: int = 5,
    max_backtracks: int = 10,
    entropy_coef: float = 0.0,
) -> tuple[UpdateResult, float]:
    """GAE advantages, one KL-bounded policy step, value regression (module doc, step 3).

    Returns the policy update's result and the value loss after its steps. When every
    episode of the batch earned the same reward there is no signal for the policy (the true
    advantages are all 0; what GAE returns is the critic's error, which normalisation would
    blow up to unit scale), so the policy step is skipped with reason "no_reward_signal"
    (`accepted=False`, policy untouched); the value network still learns from the batch.
    """
    mask = rollout.mask
    with torch.no_grad():
        values = model.value(rollout.states) * mask
    advantages, returns = gae(rollout.rewards, values, mask, gamma, lam)
    advantages = normalize_advantages(advantages, mask)
    states, actions = rollout.states[mask], rollout.actions[mask]
    if len(set(rollout.episode_rewards)) <= 1:
        result = UpdateResult(False, 0.0, 0.0, 0.0, 0.0, 0, 0.0, "no_reward_signal")
        value = value_update(model.value, value_optimizer, states, returns[mask], value_steps)
        return result, value.loss_after
    result = kl_bounded_update(
        model.policy,
        states,
        actions,
        advantages[mask],
        rollout.log_probs[mask],
        lr=lr,
        kl_bound=kl_bound,
        max_backtracks=max_backtracks,
        entropy_coef=entropy_coef,
    )
    value = value_update(model.value, value_optimizer, states, returns[mask], steps=value_steps)
    return result, value.loss_after


def train_pg(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    device: torch.device,
    *,
    rounds: int,
    kl_bound: float,
    lr: float,
    seed: int,
    max_new_tokens: int,
    max_length: int,
    batch_size: int = 8,
    value_lr: float = 1e-2,
    value_steps: int = 5,
    gamma: float = 1.0,
    lam: float = 0.95,
    max_backtracks: int = 10,
    entropy_coef: float = 0.0,
    on_round: Callable[[RoundStats], None] | None = None,
) -> list[RoundStats]:
    """AR1: `rounds` rounds of rollout + trust-region update, from the policy as it is (AR0's).

    Each round takes the next `batch_size` examples of a seeded shuffle (reshuffled per
    pass); rollouts sample from a generator seeded with `seed`, so a run is reproducible.
    """
    if rounds < 1 or not examples:
        raise ValueError(f"need rounds >= 1 and some examples (got {rounds}, {len(examples)})")
    generator = torch.Generator().manual_seed(seed)
    order_rng = torch.Generator().manual_seed(seed + 1)
    torch.manual_seed(seed)
    value_optimizer = torch.optim.Adam(model.value.parameters(), lr=value_lr)
    order: list[int] = []
    stats: list[RoundStats] = []
    for index in range(rounds):
        while len(order) < batch_size:
            order.extend(torch.randperm(len(examples), generator=order_rng).tolist())
        chosen, order = order[:batch_size], order[batch_size:]
        rollout = collect_rollouts(
            model,
            tokenizer,
            task,
            [examples[i] for i in chosen],
            device,
            generator,
            max_new_tokens=max_new_tokens,
            max_length=max_length,
        )
        result, value_loss = pg_update(
            model,
            rollout,
            value_optimizer,
            kl_bound=kl_bound,
            lr=lr,
            gamma=gamma,
            lam=lam,
            value_steps=value_steps,
            max_backtracks=max_backtracks,
            entropy_coef=entropy_coef,
        )
        row = RoundStats(
            round=index + 1,
            mean_reward=_mean(rollout.episode_rewards),
            format_validity=_mean(rollout.metrics.get("format_validity", [])),
            exact_match=_mean(rollout.metrics.get("exact_match", [])),
            kl=result.kl,
            accepted=result.accepted,
            n_backtracks=result.n_backtracks,
            step_fraction=result.step_fraction,
            reason=result.reason,
            value_loss=value_loss,
            n_decisions=int(rollout.mask.sum()),
            plan_length=mean_plan_length(rollout.plans),
            switch_rate=switch_rate(rollout.plans),
        )
        stats.append(row)
        if on_round is not None:
            on_round(row)
    return stats


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
