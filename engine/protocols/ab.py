"""The A/B protocol: a baseline arm and a variant arm, trained alike, scored on one eval set.

What V1-V4 and the router run under. Order of work and why:
1. The plan is the one frozen when the job was queued (engine.plan.FrozenPlan); runs are
   created (or an arm finished by an earlier attempt of the job is picked for reuse,
   `engine.arm_reuse.reusable_run`) before the base model loads, so the console shows them.
2. One base model, two adapters per seed (same seed, same LoRA init, same batches), trained
   and evaluated on every eval example; arms that differ in anything but the variant are
   refused (`check_arms`).
3. Cost: the KV-cache check, latency interleaved between the two trained models of the first
   seed until its interval decides the gate, peak tensor memory of both (training step and
   generation), FLOPs on one probe batch.
4. Statistics per metric from the paired evidence (`engine.protocols.evidence`); the verdict
   waits for the whole batch (engine.decision).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from engine import arm_costs, arm_reuse
from engine.adapter_files import adapter_key
from engine.arms import ArmRecord
from engine.evaluation.latency import LatencyMeasurement
from engine.evaluation.measure import PeakMemory
from engine.evaluation.tensor_memory import TensorPeak
from engine.outcome import ExperimentOutcome, MetricOutcome
from engine.protocols.ab_sections import ab_sections
from engine.protocols.base import ExperimentProtocol
from engine.protocols.evidence import arm_metric_stats, mark_identical
from engine.runner import load_data
from engine.tasks.base import Task, TaskExample
from store.models import Run

if TYPE_CHECKING:
    import torch

    from engine.arms import RoleResult
    from engine.models.base_model import BaseModel
    from engine.plan import ExperimentPlan, FrozenPlan
    from engine.runner import ExperimentRunner
    from engine.spec import LoadedSpec


class ABProtocol(ExperimentProtocol):
    name = "ab"
    description = "baseline arm vs variant arm, trained alike, scored on the same eval examples"

    def run(
        self, runner: ExperimentRunner, loaded: LoadedSpec, frozen: FrozenPlan
    ) -> ExperimentOutcome:
        spec = loaded.spec
        plan = frozen.experiment
        experiment_id = runner.recorder.open_experiment(
            spec.experiment_name,
            spec.canonical_json(),
            spec.spec_hash(),
            str(loaded.path),
        )
        # generated before any run exists: each run records the eval set it is scored on
        task, train, evals = load_data(loaded, plan)  # same examples for every seed
        reused: dict[tuple[int, str], tuple[Run, dict]] = {}
        run_ids: dict[tuple[int, str], int] = {}
        for seed in plan.seeds:
            for role in ("baseline", "variant"):
                record = ArmRecord.of(
                    frozen,
                    adapter_key(role, loaded, plan, seed, frozen.pretrain),
                    evals,
                    runner.device.type,
                )
                # a variant warm-started from its baseline is only as reusable as that baseline
                warm = role == "variant" and spec.bem_config.warm_starts_from_baseline
                blocked = (
                    "it was warm-started from a baseline that is trained again"
                    if warm and (seed, "baseline") not in reused
                    else None
                )
                found = arm_reuse.reusable_run(runner, role, seed, record, loaded, evals, blocked)
                if found is not None:
                    done, _ = found
                    reused[seed, role] = found
                    assert done.id is not None
                    run_ids[seed, role] = done.id
                    continue
                run_id = runner.recorder.open_run(
                    experiment_id=experiment_id,
                    invocation_id=runner.invocation_id,
                    role=role,
                    seed=seed,
                    quick=runner.options.quick,
                    device=str(runner.device),
                    total_steps=plan.steps,
                    job_id=runner.job.job_id if runner.job else None,
                    attempt=runner.job.attempt if runner.job else 1,
                    adapter_key=record.adapter_key,
                    plan_json=record.to_json(),
                )
                run_ids[seed, role] = run_id
        first = plan.seeds[0]
        # device-wide NVML sampling (~10 Hz) for the whole experiment when CUDA is in use;
        # on CPU it only watches RSS and the GPU fields stay "unavailable"
        gpu_watch = PeakMemory(runner.device)
        gpu_watch.__enter__()
        try:
            base = runner.load_base(spec.model.base_model)
            results: dict[tuple[int, str], RoleResult] = {}
            for seed in plan.seeds:
                for role in ("baseline", "variant"):
                    if (seed, role) in reused:
                        results[seed, role] = arm_reuse.reload_arm(
                            runner, *reused[seed, role], loaded, base, task, evals
                        )
                        continue
                    results[seed, role] = runner.train_and_evaluate(
                        role,
                        run_ids[seed, role],
                        loaded,
                        plan,
                        base,
                        task,
                        train,
                        evals,
                        seed,
                        warm_start=(
                            results[seed, "baseline"].adapter_path
                            if role == "variant" and spec.bem_config.warm_starts_from_baseline
                            else None
                        ),
                        before_evaluate=lambda model, role=role, seed=seed: self.before_evaluate(
                            runner, loaded, plan, role, seed, model, task, base
                        ),
                    )
                    if seed != first:
                        results[seed, role].model = None  # only the first seed's are timed
            arms = arm_reuse.check_arms(runner, spec.experiment_name, results, evals)
            kv = {
                role: arm_costs.kv_check(
                    runner, results[first, role].model, base, evals, loaded, plan
                )
                for role in ("baseline", "variant")
            }
            latency, pregen = arm_costs.measure_latency_pair(
                runner,
                results[first, "baseline"].model,
                results[first, "variant"].model,
                base,
                evals,
                plan,
                loaded,
            )
            b, v = results[first, "baseline"], results[first, "variant"]
            memory = arm_costs.tensor_memory(
                runner, {"baseline": b, "variant": v}, loaded, plan, base, task, train, evals
            )
        finally:
            gpu_watch.__exit__(None, None, None)
        watched = gpu_watch.reading
        for run_id in run_ids.values():
            runner.recorder.measured(  # process-wide, both arms: context beside the tensor peaks
                run_id,
                rss_peak_bytes=watched.rss_peak_bytes if watched else None,
                gpu_memory_used_bytes=watched.gpu_used_bytes if watched else None,
                gpu_utilization=watched.gpu_utilization if watched else None,
            )
        for i, role in enumerate(("baseline", "variant")):
            samples = latency.baseline_ms if i == 0 else latency.variant_ms
            runner.recorder.measured(
                run_ids[first, role],
                latency_p50_ms=float(np.percentile(samples, 50)),
                latency_p95_ms=float(np.percentile(samples, 95)),
                latency_samples_json=json.dumps([round(x, 4) for x in samples]),
                load_json=json.dumps(latency.load),
                pregen_ms_p50=pregen[i],
                kv_hit_rate=kv[role].hit_rate,
            )
        phase = runner.progress.phase(
            f"{spec.experiment_name}: statistics (BCa, tests)", len(spec.metric_names)
        )
        per_seed = [(results[s, "baseline"], results[s, "variant"]) for s in plan.seeds]
        metrics = self.evidence(task, evals, per_seed, plan, spec.metric_names)
        phase.advance(len(spec.metric_names))
        phase.done()
        outcome = ExperimentOutcome(
            name=spec.experiment_name,
            spec=loaded,
            plan=plan,
            experiment_id=experiment_id,
            baseline_run_id=b.run_id,
            variant_run_id=v.run_id,
            param_ratio=v.params_trainable / b.params_trainable,
            flop_ratio=v.flops / b.flops,
            latency_ratio=latency.ratio,
            kv_hit_rate=kv["variant"].hit_rate,
            kv_hit_rate_baseline=kv["baseline"].hit_rate,
            pregen_ms=pregen[1],
            variant_stats=v.variant_stats,
            baseline_stats=b.variant_stats,
            sections=ab_sections(b.variant_stats, v.variant_stats),
            memory_ratio=memory_ratio(memory),
            metrics=metrics,
            seed_runs=[
                {
                    "seed": s,
                    "baseline_run_id": run_ids[s, "baseline"],
                    "variant_run_id": run_ids[s, "variant"],
                }
                for s in plan.seeds
            ],
            arms=[arm.to_dict() for arm in arms],
            costs=cost_details(latency, memory, watched.rss_peak_bytes if watched else None),
        )
        return self.finish(outcome, runner, loaded, task, evals, per_seed, base)

    # -- hooks for protocols built on this one (engine.protocols.curve) -------------------
    def before_evaluate(
        self,
        runner: ExperimentRunner,
        loaded: LoadedSpec,
        plan: ExperimentPlan,
        role: str,
        seed: int,
        model: torch.nn.Module,
        task: Task,
        base: BaseModel,
    ) -> None:
        """After an arm trained, before it meets an eval example; A/B: nothing."""

    def evidence(
        self,
        task: Task,
        evals: list[TaskExample],
        per_seed: list[tuple[RoleResult, RoleResult]],
        plan: ExperimentPlan,
        metrics: list[str],
    ) -> list[MetricOutcome]:
        """The hypotheses of the BH family; A/B: every spec metric over every eval example."""
        found = [arm_metric_stats(m, task, evals, per_seed, plan) for m in metrics]
        return mark_identical(found, _paired_differences(found, per_seed, task))

    def finish(
        self,
        outcome: ExperimentOutcome,
        runner: ExperimentRunner,
        loaded: LoadedSpec,
        task: Task,
        evals: list[TaskExample],
        per_seed: list[tuple[RoleResult, RoleResult]],
        base: BaseModel,
    ) -> ExperimentOutcome:
        """Last word on the outcome (sections, own gates); A/B: as it is."""
        return outcome


def memory_ratio(memory: dict[str, TensorPeak]) -> float | None:
    """Variant / baseline peak tensor memory, the larger of the training-step and the
    generation ratio (an arm may be leaner in one phase and heavier in the other)."""
    b, v = memory["baseline"], memory["variant"]
    ratios = [
        v.train_bytes / b.train_bytes if b.train_bytes else None,
        v.generate_bytes / b.generate_bytes if b.generate_bytes else None,
    ]
    known = [r for r in ratios if r is not None]
    return max(known) if known else None


def cost_details(
    latency: LatencyMeasurement, memory: dict[str, TensorPeak], rss_peak_bytes: int | None
) -> dict:
    """What the cost gates rest on, for the comparison row (costs_json) and the reports."""
    b, v = memory["baseline"], memory["variant"]
    return {
        "latency": {
            "ratio": latency.ratio,
            "low": latency.low,
            "high": latency.high,
            "confidence_level": latency.confidence_level,
            "rounds": latency.rounds,
            "rounds_planned": latency.rounds_planned,
            "rounds_cap": latency.rounds_cap,
            "budget": latency.budget,
            "outcome": latency.outcome,
            "load": latency.load,
        },
        "memory": {
            "kind": v.kind,
            "baseline": {"train_bytes": b.train_bytes, "generate_bytes": b.generate_bytes},
            "variant": {"train_bytes": v.train_bytes, "generate_bytes": v.generate_bytes},
            "train_ratio": v.train_bytes / b.train_bytes if b.train_bytes else None,
            "generate_ratio": v.generate_bytes / b.generate_bytes if b.generate_bytes else None,
            "process_rss_peak_bytes": rss_peak_bytes,
        },
    }


def _paired_differences(
    metrics: list[MetricOutcome], per_seed: list[tuple[RoleResult, RoleResult]], task: Task
) -> dict[str, list[np.ndarray]]:
    """Each per-example metric's paired differences, every seed's (for `mark_identical`)."""
    return {
        m.metric: [
            np.subtract(v.column(m.metric), b.column(m.metric), dtype=float) for b, v in per_seed
        ]
        for m in metrics
        if not task.metric(m.metric).corpus_level
    }
