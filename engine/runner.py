"""One `bemctl run` invocation: train baseline and variant per experiment, measure, decide.

Order of work and why:
1. Resolve every spec and variant first, so a typo fails before minutes of training.
2. Per experiment: one base model, two adapters (same seed, same LoRA init, same batches),
   trained with step losses streamed to the store; both evaluated on every eval example.
3. Latency is measured interleaved between the two trained models, FLOPs on one probe batch.
4. After all experiments: BH-FDR over every (experiment, metric) of the invocation, gates,
   verdict; each comparison (stats + gates + verdict) is written in a single transaction,
   so a crash or Ctrl-C leaves either a whole verdict or none.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bemctl.errors import BemctlError
from bemctl.settings import Settings
from engine import stats
from engine.device import resolve_device
from engine.evaluation.generation import greedy_generate
from engine.evaluation.measure import PeakMemory, flops_per_token, interleaved_latency
from engine.evaluation.scoring import evaluate_qa
from engine.gates import GateInputs, GatePolicy, MetricEvidence, evaluate_gates, verdict
from engine.models.base_model import BaseModel, PretrainPlan, load_base_model
from engine.plan import ExperimentPlan, RunOptions, make_plan
from engine.progress import NullProgress, ProgressSink
from engine.spec import LoadedSpec
from engine.tasks.qa import QAExample, format_prompt, make_qa_splits
from engine.training import TrainingDiverged, TrainPlan, collate, encode_example, train_adapter
from engine.variants.lora.config import LoraConfig
from engine.variants.registry import model_class
from store import queries
from store.db import Store
from store.models import Comparison, GateDecision, StatResult


@dataclass
class MetricOutcome:
    metric: str
    n: int
    baseline_mean: float
    variant_mean: float
    interval: stats.Interval
    test: stats.PairedTest
    effect_dz: float | None
    p_adjusted: float | None = None


@dataclass
class ExperimentOutcome:
    name: str
    spec: LoadedSpec
    plan: ExperimentPlan
    experiment_id: int
    baseline_run_id: int
    variant_run_id: int
    param_ratio: float
    flop_ratio: float
    latency_ratio: float | None
    memory_ratio: float | None
    metrics: list[MetricOutcome]
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    gates: list = field(default_factory=list)
    comparison_id: int | None = None
    family_size: int = 0


@dataclass
class RoleResult:
    run_id: int
    model: torch.nn.Module
    scores: dict[str, dict[str, float]]
    params_total: int
    params_trainable: int
    flops: float
    memory_bytes: int
    memory_kind: str


def resolve_specs(names: Sequence[str], settings: Settings) -> list[LoadedSpec]:
    from engine.spec import find_spec

    loaded = [find_spec(name, settings.experiment_paths) for name in names]
    for item in loaded:
        model_class(item.spec.bem_config.variant)  # raises "not implemented yet: <variant>"
    seen = set()
    for item in loaded:
        if item.spec.experiment_name in seen:
            raise BemctlError(f"experiment {item.spec.experiment_name!r} given twice")
        seen.add(item.spec.experiment_name)
    return loaded


def load_data(loaded: LoadedSpec, plan: ExperimentPlan) -> tuple[list[QAExample], list[QAExample]]:
    data = loaded.spec.data
    if data.task == "synthetic_qa":
        return make_qa_splits(plan.train_size, plan.eval_size, plan.seed, data.n_facts)
    from engine.tasks.jsonl import load_qa_jsonl

    if data.train_file is None or data.eval_file is None:
        raise BemctlError(f"{loaded.path}: data: task 'jsonl_qa' needs train_file and eval_file")
    train = load_qa_jsonl(loaded.resolve(data.train_file))[: plan.train_size]
    evals = load_qa_jsonl(loaded.resolve(data.eval_file))[: plan.eval_size]
    if len(evals) < 2:
        raise BemctlError(f"{data.eval_file}: need at least 2 eval examples (got {len(evals)})")
    overlap = {(e.context, e.question) for e in train} & {(e.context, e.question) for e in evals}
    if overlap:
        raise BemctlError(
            f"{data.eval_file}: {len(overlap)} eval examples also occur in train_file"
        )
    return train, evals


class ExperimentRunner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        options: RunOptions,
        progress: ProgressSink | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.options = options
        self.progress = progress or NullProgress()
        self.device = resolve_device(settings.device)
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self.invocation_id = uuid.uuid4().hex[:12]
        self.adapter_dir = settings.store_path.parent / "adapters"

    # -- public -------------------------------------------------------------------------
    def run(self, specs: Sequence[LoadedSpec]) -> list[ExperimentOutcome]:
        queries.reap_stale_runs(self.store)
        outcomes = [self._run_experiment(loaded) for loaded in specs]
        self._decide(outcomes)
        return outcomes

    # -- one experiment -----------------------------------------------------------------
    def _run_experiment(self, loaded: LoadedSpec) -> ExperimentOutcome:
        spec = loaded.spec
        plan = make_plan(spec, self.settings, self.options)
        experiment = queries.get_or_create_experiment(
            self.store,
            spec.experiment_name,
            spec.canonical_json(),
            spec.spec_hash(),
            str(loaded.path),
        )
        run_ids = {
            role: queries.create_run(
                self.store,
                experiment_id=experiment.id,
                invocation_id=self.invocation_id,
                role=role,
                seed=plan.seed,
                quick=self.options.quick,
                device=str(self.device),
                total_steps=plan.steps,
            ).id
            for role in ("baseline", "variant")
        }
        try:
            base = self._base_model(spec.model.base_model)
            train, evals = load_data(loaded, plan)
            results = {}
            for role in ("baseline", "variant"):
                results[role] = self._train_and_evaluate(
                    role, run_ids[role], loaded, plan, base, train, evals
                )
            latency = self._latency(results, base, evals, plan, loaded)
        except BaseException as exc:
            self._abandon(run_ids.values(), exc)
            raise
        b, v = results["baseline"], results["variant"]
        lat_ratio = latency[1].p50 / latency[0].p50 if latency[0].p50 > 0 else None
        for role, lat in zip(("baseline", "variant"), latency, strict=True):
            queries.update_run(
                self.store, run_ids[role], latency_p50_ms=lat.p50, latency_p95_ms=lat.p95
            )
        phase = self.progress.phase(
            f"{spec.experiment_name}: statistics (BCa, tests)", len(spec.validation.metrics)
        )
        metrics = []
        for metric in spec.validation.metrics:
            metrics.append(self._metric_stats(metric, b.scores, v.scores, plan))
            phase.advance(1, metric)
        phase.done()
        return ExperimentOutcome(
            name=spec.experiment_name,
            spec=loaded,
            plan=plan,
            experiment_id=experiment.id,
            baseline_run_id=b.run_id,
            variant_run_id=v.run_id,
            param_ratio=v.params_trainable / b.params_trainable,
            flop_ratio=v.flops / b.flops,
            latency_ratio=lat_ratio,
            memory_ratio=v.memory_bytes / b.memory_bytes if b.memory_bytes else None,
            metrics=metrics,
        )

    def _base_model(self, name: str) -> BaseModel:
        p = self.settings.pretrain
        plan = PretrainPlan(
            steps=p.steps,
            batch_size=p.batch_size,
            learning_rate=p.learning_rate,
            corpus_docs=p.corpus_docs,
        )
        phase = None

        def on_step(step: int, total: int, loss: float) -> None:
            nonlocal phase
            if phase is None:
                phase = self.progress.phase("pre-train base model (cached after)", total)
            phase.advance(1, f"loss {loss:.3f}")

        base = load_base_model(name, self.settings.cache_dir, plan, progress=on_step)
        if phase is not None:
            phase.done()
        return base

    def _build(self, role: str, loaded: LoadedSpec, base: BaseModel, seed: int) -> torch.nn.Module:
        cfg = loaded.spec.bem_config
        torch.manual_seed(seed)  # identical LoRA init for baseline and variant
        model_copy = copy.deepcopy(base.model)
        if role == "baseline":
            lora = LoraConfig(
                rank_dimension=cfg.rank_dimension,
                lora_alpha=cfg.lora_alpha,
                target_modules=cfg.target_modules,
            )
            from engine.variants.lora.model import StaticLoraModel

            try:
                return StaticLoraModel(model_copy, lora).to(self.device)
            except ValueError as exc:
                raise BemctlError(f"{loaded.path}: {exc}") from None
        try:
            return model_class(cfg.variant)(model_copy, cfg).to(self.device)
        except ValueError as exc:
            raise BemctlError(f"{loaded.path}: {exc}") from None

    def _train_and_evaluate(
        self,
        role: str,
        run_id: int,
        loaded: LoadedSpec,
        plan: ExperimentPlan,
        base: BaseModel,
        train: list[QAExample],
        evals: list[QAExample],
    ) -> RoleResult:
        spec = loaded.spec
        queries.mark_run_running(self.store, run_id)
        model = self._build(role, loaded, base, plan.seed)
        total, trainable = model.parameter_counts()
        tplan = TrainPlan(
            steps=plan.steps,
            batch_size=plan.batch_size,
            learning_rate=spec.training.learning_rate,
            warmup_steps=min(spec.training.warmup_steps, plan.steps // 2),
            gradient_clip=spec.training.gradient_clip,
            weight_decay=spec.training.weight_decay,
            seed=plan.seed,
            max_length=spec.model.max_length,
        )
        phase = self.progress.phase(f"{spec.experiment_name}: train {role}", plan.steps)

        def on_step(step: int, loss: float, lr: float, elapsed: float) -> None:
            queries.record_step(self.store, run_id, step, loss, lr, elapsed)
            phase.advance(1, f"loss {loss:.3f}")

        try:
            train_adapter(model, base.tokenizer, train, tplan, self.device, on_step)
        except TrainingDiverged as exc:
            queries.mark_run_finished(self.store, run_id, "failed", str(exc))
            raise BemctlError(
                f"{spec.experiment_name} {role}: training failed: {exc}", exit_code=1
            ) from None
        phase.done()
        adapter_path = self._save_adapter(run_id, model)
        probe = collate(
            [encode_example(base.tokenizer, ex, spec.model.max_length) for ex in evals[:8]],
            base.tokenizer.pad_token_id,
        )
        flops = flops_per_token(
            model, probe["input_ids"].to(self.device), probe["attention_mask"].to(self.device)
        )
        phase = self.progress.phase(f"{spec.experiment_name}: evaluate {role}", len(evals))
        with PeakMemory(self.device) as mem:
            out = evaluate_qa(
                model,
                base.tokenizer,
                evals,
                spec.validation.metrics,
                self.device,
                spec.data.max_new_tokens,
                spec.model.max_length,
                on_example=lambda i: phase.advance(1),
            )
        phase.done()
        reading = mem.reading
        queries.record_evaluation(self.store, run_id, out.scores, out.predictions)
        queries.update_run(
            self.store,
            run_id,
            params_total=total,
            params_trainable=trainable,
            flops_per_token=flops,
            peak_memory_bytes=reading.peak_bytes,
            memory_kind=reading.kind,
            gpu_memory_used_bytes=reading.gpu_used_bytes,
            gpu_utilization=reading.gpu_utilization,
            adapter_path=str(adapter_path),
        )
        queries.mark_run_finished(self.store, run_id, "succeeded")
        return RoleResult(
            run_id, model, out.scores, total, trainable, flops, reading.peak_bytes, reading.kind
        )

    def _save_adapter(self, run_id: int, model: torch.nn.Module) -> Path:
        from safetensors.torch import save_file

        self.adapter_dir.mkdir(parents=True, exist_ok=True)
        target = self.adapter_dir / f"run-{run_id}.safetensors"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=self.adapter_dir)
        os.close(fd)
        try:
            save_file(model.trainable_state_dict(), tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def _latency(
        self,
        results: dict[str, RoleResult],
        base: BaseModel,
        evals: list[QAExample],
        plan: ExperimentPlan,
        loaded: LoadedSpec,
    ):
        spec = loaded.spec
        probes = [format_prompt(ex) for ex in evals[: min(len(evals), 16)]]
        phase = self.progress.phase(
            f"{spec.experiment_name}: latency (interleaved)", plan.latency_rounds
        )

        def runner(model):
            return lambda r: greedy_generate(
                model,
                base.tokenizer,
                probes[r % len(probes)],
                spec.data.max_new_tokens,
                self.device,
                spec.model.max_length,
            )

        lat = interleaved_latency(
            [runner(results["baseline"].model), runner(results["variant"].model)],
            plan.latency_rounds,
            on_round=lambda r: phase.advance(1),
        )
        phase.done()
        return lat

    def _metric_stats(
        self, metric: str, base_scores: dict, var_scores: dict, plan: ExperimentPlan
    ) -> MetricOutcome:
        ids = sorted(base_scores)
        a = np.array([base_scores[i][metric] for i in ids])
        b = np.array([var_scores[i][metric] for i in ids])
        interval = stats.bca_interval(
            b - a, plan.bootstrap_samples, plan.confidence_level, plan.seed
        )
        return MetricOutcome(
            metric,
            len(ids),
            float(a.mean()),
            float(b.mean()),
            interval,
            stats.paired_test(a, b),
            stats.cohens_dz(b - a),
        )

    def _abandon(self, run_ids, exc: BaseException) -> None:
        """Close this experiment's unfinished runs with the reason, before re-raising."""
        if isinstance(exc, KeyboardInterrupt):
            status, reason = "cancelled", "interrupted by user (Ctrl-C)"
        else:
            status, reason = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
        for run_id in run_ids:
            run = queries.get_run(self.store, run_id)
            if run is not None and run.status in ("queued", "running"):
                queries.mark_run_finished(self.store, run_id, status, reason)

    # -- the invocation's decision ----------------------------------------------------
    def _decide(self, outcomes: list[ExperimentOutcome]) -> None:
        family = [(o, m) for o in outcomes for m in o.metrics]
        alpha = min((o.plan.fdr_alpha for o in outcomes), default=0.05)
        fdr = stats.benjamini_hochberg([m.test.p_value for _, m in family], alpha)
        for (_, m), adj in zip(family, fdr.adjusted, strict=True):
            m.p_adjusted = float(adj)
        for o in outcomes:
            o.family_size = fdr.family_size
            gates_spec = o.spec.spec.acceptance_gates
            o.gates = evaluate_gates(
                GateInputs(
                    o.param_ratio,
                    o.flop_ratio,
                    o.latency_ratio,
                    o.memory_ratio,
                    o.plan.budget_tolerance,
                    o.plan.latency_budget,
                    o.plan.memory_budget,
                ),
                [
                    MetricEvidence(m.metric, m.interval.estimate, m.interval.low, m.p_adjusted)
                    for m in o.metrics
                ],
                GatePolicy(
                    gates_spec.min_improvement,
                    o.plan.fdr_alpha,
                    gates_spec.statistical_significance,
                    gates_spec.ci_lower_bound_positive,
                    gates_spec.performance_gates_pass,
                ),
            )
            o.verdict, o.reasons = verdict(o.gates)
            o.comparison_id = queries.save_comparison(self.store, *self._rows(o))

    def _rows(self, o: ExperimentOutcome):
        comparison = Comparison(
            experiment_id=o.experiment_id,
            invocation_id=self.invocation_id,
            baseline_run_id=o.baseline_run_id,
            variant_run_id=o.variant_run_id,
            verdict=o.verdict,
            reasons_json=json.dumps(o.reasons),
            family_size=o.family_size,
            param_ratio=o.param_ratio,
            flop_ratio=o.flop_ratio,
            latency_ratio=o.latency_ratio,
            memory_ratio=o.memory_ratio,
            bootstrap_samples=o.plan.bootstrap_samples,
            seed=o.plan.seed,
        )
        stat_rows = [
            StatResult(
                metric=m.metric,
                n=m.n,
                baseline_mean=m.baseline_mean,
                variant_mean=m.variant_mean,
                mean_diff=m.interval.estimate,
                ci_low=m.interval.low,
                ci_high=m.interval.high,
                confidence_level=m.interval.confidence_level,
                ci_method=m.interval.method,
                bootstrap_samples=m.interval.n_resamples,
                z0=m.interval.z0,
                acceleration=m.interval.acceleration,
                test_name=m.test.name,
                p_value=m.test.p_value,
                p_adjusted=m.p_adjusted,
                family_size=o.family_size,
                effect_dz=m.effect_dz,
                effect_formula=stats.DZ_FORMULA,
                degenerate=m.interval.degenerate,
            )
            for m in o.metrics
        ]
        gate_rows = [
            GateDecision(
                gate=g.gate,
                metric=g.metric,
                passed=g.passed,
                observed=g.observed,
                threshold=g.threshold,
                comparator=g.comparator,
                detail=g.detail,
            )
            for g in o.gates
        ]
        return comparison, stat_rows, gate_rows
