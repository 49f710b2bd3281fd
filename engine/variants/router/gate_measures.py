"""What the router gates read, measured on a trained router after its evaluation.

- Plan length and switch rate of the plans the evaluated sequences were decoded with.
  Routing is causal (prompt chunks from the prompt, later chunks from earlier ones), so the
  plan of the fed ids routed at once, told where the prompt ends, is the plan decoding
  applied chunk by chunk; it is recomputed here from the ids evaluation recorded.
- Trust-region projections: for every adapted layer and every action the evaluation's plans
  used, whether the composition's ‖ΔW‖_F exceeded tau and was projected.
- Expert overlap (mean off-diagonal of `RouterModel.expert_overlap`).
- Evidence monotonicity: the router's score with clean evidence, with half of the examples
  given another example's evidence features and with all of them given another's (a
  derangement). A router that uses its evidence must not score higher on degraded evidence.
  All three conditions decide the plan from the prompt and keep it fixed while decoding (as
  AR1's rollouts do), so they differ in nothing but the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.evaluation.generation import greedy_generate
from engine.models.tokenizer import TextTokenizer
from engine.router.composition import frobenius_norm
from engine.router.plan import SequencePlan, mean_plan_length, switch_rate
from engine.tasks.base import Task, TaskExample

if TYPE_CHECKING:
    from engine.variants.router.model import RouterModel

SCORE_METRICS: tuple[str, ...] = ("format_validity", "exact_match")  # AR1's reward, halved
MONOTONICITY_EXAMPLES = 64
MONOTONICITY_Z = 1.96  # a rise counts only beyond this many standard errors of its mean


def evaluated_plans(
    model: RouterModel,
    tokenizer: TextTokenizer,
    examples: Sequence[TaskExample],
    predictions: Mapping[str, str],
    device: torch.device,
    *,
    max_new_tokens: int,
    max_length: int,
    sequences: Sequence[tuple[Sequence[int], int]] | None = None,
) -> list[SequencePlan]:
    """The plan of each evaluated sequence: the ids evaluation fed the model with their
    prompt length (`sequences`, one per example, as `engine.evaluation.scoring` records
    them), or without them the prompt as generation truncated it + the re-encoded answer."""
    room = max(1, max_length - max_new_tokens)
    if sequences is None:
        sequences = []
        for example in examples:
            prompt = tokenizer.encode(example.prompt)[-room:]
            answer = tokenizer.encode(predictions.get(example.id, ""))
            sequences.append((prompt + answer, len(prompt)))
    plans = []
    with torch.no_grad():
        for ids, prompt_length in sequences:
            previous, evidence = model.chunk_states(
                torch.tensor([list(ids)], device=device), torch.tensor([prompt_length])
            )
            plans.append(model.plan(previous[0], evidence[0]))
    return plans


def projection_counts(model: RouterModel, plans: Sequence[SequencePlan]) -> dict[str, float]:
    """Per (adapted layer, action used by some plan): was its composition projected?"""
    actions = sorted({a for p in plans for a in p.chunk_actions}, key=model.space.encode)
    norms = []
    with torch.no_grad():
        for name in model.lora_layers:
            for action in actions:
                u, v = model.action_factors(action, name)
                norms.append(float(frobenius_norm([u], [v])))
    tau = model.config.trust_region_tau
    projected = sum(n > tau for n in norms)
    return {
        "distinct_actions": len(actions),
        "compositions": len(norms),
        "projected": projected,
        "projection_rate": projected / len(norms) if norms else 0.0,
        "max_norm": max(norms, default=0.0),
        "tau": tau,
    }


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation without fixed points (a shuffle that moves every example)."""
    if n < 2:
        raise ValueError("evidence monotonicity needs at least 2 examples")
    while True:
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order


def evidence_monotonicity(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    device: torch.device,
    *,
    max_new_tokens: int,
    max_length: int,
    seed: int,
    metrics: Sequence[str] = SCORE_METRICS,
) -> dict:
    """Mean score per evidence condition and whether degrading evidence ever raised it.

    A step "rises" when the degraded condition's mean paired difference exceeds
    MONOTONICITY_Z standard errors (noise alone would otherwise fail a router whose score
    does not depend on evidence about half of the time).
    """
    rng = np.random.default_rng(seed)
    n = len(examples)
    foreign = _derangement(n, rng)
    half = set(rng.permutation(n)[: n // 2].tolist())
    room = max(1, max_length - max_new_tokens)
    states = []
    with torch.no_grad():
        for example in examples:
            ids = torch.tensor([tokenizer.encode(example.prompt)[-room:]], device=device)
            previous, evidence = model.chunk_states(ids, torch.tensor([ids.shape[1]]))
            states.append((previous[0], evidence[0]))

    def evidence_for(i: int, degraded: bool) -> torch.Tensor:
        own = states[i][1]
        if not degraded:
            return own
        other = states[int(foreign[i])][1]
        rows = torch.arange(own.shape[0]).clamp(max=other.shape[0] - 1)
        return other[rows]

    conditions = {
        "clean": [False] * n,
        "half_shuffled": [i in half for i in range(n)],
        "shuffled": [True] * n,
    }
    scores: dict[str, list[float]] = {}
    model.eval()
    try:
        for name, degraded in conditions.items():
            values = []
            for i, example in enumerate(examples):
                plan = model.plan(states[i][0], evidence_for(i, degraded[i]))
                model.forced_plans = [list(plan.chunk_actions)]
                prediction = greedy_generate(
                    model, tokenizer, example.prompt, max_new_tokens, device, max_length
                )
                values.append(
                    sum(task.score_example(m, prediction, example) for m in metrics) / len(metrics)
                )
            scores[name] = values
    finally:
        model.forced_plans = None
    steps = []
    for cleaner, worse in (("clean", "half_shuffled"), ("half_shuffled", "shuffled")):
        diff = np.asarray(scores[worse]) - np.asarray(scores[cleaner])
        rise = float(diff.mean())
        margin = MONOTONICITY_Z * float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        steps.append({"from": cleaner, "to": worse, "rise": rise, "margin": margin})
    worst = max(steps, key=lambda s: s["rise"] - s["margin"])
    return {
        "n": n,
        "metrics": list(metrics),
        "means": {name: float(np.mean(v)) for name, v in scores.items()},
        "steps": steps,
        "max_rise": worst["rise"],
        "max_rise_margin": worst["margin"],
        "monotone": all(s["rise"] <= s["margin"] for s in steps),
    }


def router_statistics(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    predictions: Mapping[str, str],
    device: torch.device,
    *,
    max_new_tokens: int,
    max_length: int,
    seed: int,
    sequences: Sequence[tuple[Sequence[int], int]] | None = None,
) -> dict:
    """Everything the router gates and the report read (JSON-ready)."""
    plans = evaluated_plans(
        model,
        tokenizer,
        examples,
        predictions,
        device,
        max_new_tokens=max_new_tokens,
        max_length=max_length,
        sequences=sequences,
    )
    overlap = model.expert_overlap()
    k = overlap.shape[0]
    off_diagonal = float((overlap.sum() - overlap.diagonal().sum()) / (k * (k - 1)))
    can_score = {m.name for m in task.metrics} >= set(SCORE_METRICS)
    monotonicity = (
        evidence_monotonicity(
            model,
            tokenizer,
            task,
            examples[:MONOTONICITY_EXAMPLES],
            device,
            max_new_tokens=max_new_tokens,
            max_length=max_length,
            seed=seed,
        )
        if can_score and len(examples) >= 2
        else None
    )
    return {
        "router": True,
        "n_sequences": len(plans),
        "plan_length": mean_plan_length(plans),
        "max_plan_length": model.config.max_plan_length,
        "switch_rate": switch_rate(plans),
        "vetoed_switches": sum(p.n_vetoed for p in plans),
        "expert_share": _expert_share(plans, k),
        "projections": projection_counts(model, plans),
        "expert_overlap": off_diagonal,
        "monotonicity": monotonicity,
    }


def _expert_share(plans: Sequence[SequencePlan], k: int) -> list[float]:
    """Share of routed chunks that went to each expert."""
    counts = [0] * k
    for plan in plans:
        for action in plan.chunk_actions:
            counts[action.expert] += 1
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]
