"""The cost measurements of an arm pair: KV-cache validity, interleaved latency, peak
tensor memory.

Both arms do identical work in each (the same prompts, the same number of new tokens, no
early stop), so a ratio measures the adapter and nothing else; how many prompts and tokens
is the plan's (`[measure]` in bemctl.toml, frozen with the job). Any protocol that trains
arms with the runner (`engine.runner`) may use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.evaluation.generation import greedy_generate
from engine.evaluation.kvcache import KVCacheCheck, kv_cache_check
from engine.evaluation.latency import LatencyMeasurement, measure_latency
from engine.evaluation.tensor_memory import TensorPeak, measure_tensor_peak
from engine.models.base_model import BaseModel
from engine.plan import ExperimentPlan
from engine.spec import LoadedSpec
from engine.tasks.base import Task, TaskExample
from engine.training import collate, encode_example, training_loss

if TYPE_CHECKING:
    from engine.arms import RoleResult
    from engine.runner import ExperimentRunner


def kv_check(
    runner: ExperimentRunner,
    model: torch.nn.Module,
    base: BaseModel,
    evals: list[TaskExample],
    loaded: LoadedSpec,
    plan: ExperimentPlan,
) -> KVCacheCheck:
    """How many cached K/V entries stay valid when the arm decodes with its cache (V1 and
    the router must keep theirs valid across chunk switches), on the first probe prompts."""
    spec = loaded.spec
    return kv_cache_check(
        model,
        base.tokenizer,
        [ex.prompt for ex in evals[: plan.probe_prompts]],
        min(spec.data.max_new_tokens, plan.measure_new_tokens),
        runner.device,
        spec.model.max_length,
    )


def tensor_memory(
    runner: ExperimentRunner,
    arms: dict[str, RoleResult],
    loaded: LoadedSpec,
    plan: ExperimentPlan,
    base: BaseModel,
    task: Task,
    train: list[TaskExample],
    evals: list[TaskExample],
) -> dict[str, TensorPeak]:
    """Peak tensor memory of each arm in one training step (the plan's batch size, the
    first training examples) and in generation on the first eval prompts; both arms do
    identical work (same batch, same prompts, a fixed number of new tokens)."""
    spec = loaded.spec
    task_batch = train[: plan.batch_size]
    rows = [
        encode_example(base.tokenizer, ex.prompt, task.target(ex), spec.model.max_length)
        for ex in task_batch
    ]
    batch = {k: t.to(runner.device) for k, t in collate(rows, base.tokenizer.pad_token_id).items()}
    extras = [ex.features for ex in task_batch]
    prompts = [ex.prompt for ex in evals[: plan.memory_probe_prompts]]
    new_tokens = min(spec.data.max_new_tokens, 2 * plan.measure_new_tokens)
    phase = runner.progress.phase(f"{spec.experiment_name}: peak tensor memory", len(arms))
    readings = {}
    for role, result in arms.items():
        model = result.model
        assert model is not None

        def generate(model=model) -> None:
            for prompt in prompts:
                greedy_generate(
                    model,
                    base.tokenizer,
                    prompt,
                    new_tokens,
                    runner.device,
                    spec.model.max_length,
                    stop_early=False,
                )

        readings[role] = measure_tensor_peak(
            model,
            lambda model=model: training_loss(model, batch, extras),
            generate,
            runner.device,
        )
        runner.recorder.measured(
            result.run_id,
            peak_memory_bytes=readings[role].peak_bytes,
            memory_kind=readings[role].kind,
            tensor_peak_train_bytes=readings[role].train_bytes,
            tensor_peak_generate_bytes=readings[role].generate_bytes,
        )
        phase.advance(1, role)
    phase.done()
    return readings


def measure_latency_pair(
    runner: ExperimentRunner,
    baseline_model: torch.nn.Module,
    variant_model: torch.nn.Module,
    base: BaseModel,
    evals: list[TaskExample],
    plan: ExperimentPlan,
    loaded: LoadedSpec,
) -> tuple[LatencyMeasurement, list[float | None]]:
    """Interleaved latency rounds until the p50 ratio's interval decides the latency gate
    (engine.evaluation.latency); without performance gates, the planned rounds only."""
    spec = loaded.spec
    probes = [ex.prompt for ex in evals[: min(len(evals), plan.probe_prompts)]]
    phases: list = []

    def start_batch(first: int, n: int):
        if phases:
            phases[-1].done()
            label = f"latency: {n} more rounds (the ratio's interval straddles the budget)"
        else:
            label = "latency (interleaved)"
        phases.append(runner.progress.phase(f"{spec.experiment_name}: {label}", n))
        return lambda r: phases[-1].advance(1)

    pregen: list[list[float]] = [[], []]

    def timed(model: torch.nn.Module, index: int):
        def run(r: int) -> None:
            routing: dict = {}
            greedy_generate(
                model,
                base.tokenizer,
                probes[r % len(probes)],
                min(spec.data.max_new_tokens, plan.measure_new_tokens),
                runner.device,
                spec.model.max_length,
                stop_early=False,  # same number of tokens for both arms
                routing=routing,
            )
            if "pregen_ms" in routing:  # once-per-prompt routing phase (V2), on its own
                pregen[index].append(routing["pregen_ms"])

        return run

    budget = plan.latency_budget if spec.acceptance_gates.performance_gates_pass else None
    measured = measure_latency(
        [timed(baseline_model, 0), timed(variant_model, 1)],
        plan.latency_rounds,
        budget,
        seed=plan.seed,
        start_batch=start_batch,
    )
    phases[-1].done()
    if measured.rounds > measured.rounds_planned:
        runner.note(
            "latency_extended",
            f"{spec.experiment_name}: latency measured over {measured.rounds} rounds "
            f"(planned {measured.rounds_planned}): ratio {measured.ratio:.3f}, "
            f"interval [{measured.low:.3f}, {measured.high:.3f}], budget {budget}",
        )
    return measured, [float(np.median(p)) if p else None for p in pregen]
