"""One queued job's context and the arm machinery the protocols share.

`ExperimentRunner.run_experiment` hands the spec to its protocol (`engine.protocols`; V1-V4 and
the router: the A/B protocol, `engine.protocols.ab`). What lives here is what any protocol
that trains and scores adapter arms needs:
- building an arm on the frozen base, training it with step losses streamed to the store,
  evaluating it on every eval example, saving its adapter (`train_and_evaluate`);
- reusing an arm that an earlier attempt of the same job finished (its worker died later):
  only if its stored record (plan, base, eval set, device, adapter key; engine.arms) matches
  this attempt's, its adapter file reads and its scores cover this eval set in order;
  otherwise it is retrained and the job's log says why (`reusable_run`, `reload_arm`);
- refusing arms that differ in anything but the variant (`check_arms`);
- the cost measurements: KV-cache check, interleaved latency, peak tensor memory;
- per-metric statistics of the paired evidence (`engine.protocols.evidence`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import triton_ops
from engine.arms import ArmRecord, ScoredArm, comparison_refusal, ids_fingerprint, reuse_problem
from engine.device import resolve_device
from engine.evaluation.dynamics import routing_dynamics
from engine.evaluation.generation import greedy_generate
from engine.evaluation.kvcache import KVCacheCheck, kv_cache_check
from engine.evaluation.latency import LatencyMeasurement, measure_latency
from engine.evaluation.measure import flops_per_token
from engine.evaluation.scoring import evaluate
from engine.evaluation.tensor_memory import TensorPeak, measure_tensor_peak
from engine.models.base_model import BaseModel, PretrainPlan, load_base_model
from engine.outcome import ExperimentOutcome, MetricOutcome
from engine.plan import ExperimentPlan, FrozenPlan, RunOptions, freeze_plan
from engine.progress import NullProgress, ProgressSink
from engine.protocols.evidence import compare_corpus, compare_paired
from engine.protocols.registry import get_protocol
from engine.queue.control import JobControl
from engine.recorder import Recorder
from engine.settings import Settings
from engine.spec import LoadedSpec
from engine.tasks.base import Task, TaskExample
from engine.tasks.registry import build_task
from engine.training import (
    TrainingDiverged,
    TrainPlan,
    collate,
    encode_example,
    train_adapter,
    training_loss,
)
from engine.variants.build import build_adapter_model
from engine.variants.registry import model_class
from store.db import Store
from store.errors import BemctlError
from store.models import Run
from store.recorder import SqliteRecorder


@dataclass
class RoleResult:
    run_id: int
    model: torch.nn.Module | None
    scores: dict[str, dict[str, float]]
    params_total: int
    params_trainable: int
    flops: float
    adapter_path: Path
    corpus_stats: dict = field(default_factory=dict)  # metric -> (n, k) sufficient stats
    variant_stats: dict | None = None  # what the adapter measured about itself (router)
    example_ids: list[str] = field(default_factory=list)  # scored examples, by position

    def column(self, metric: str) -> list[float]:
        """This arm's `metric` scores in position order (what pairing uses)."""
        return [self.scores[example_id][metric] for example_id in self.example_ids]


@dataclass(frozen=True)
class JobContext:
    """Which job and attempt the runs belong to, and the worker's control over it."""

    job_id: int
    attempt: int
    control: JobControl | None = None


def resolve_specs(names: Sequence[str], settings: Settings) -> list[LoadedSpec]:
    from engine.spec import find_spec

    # find_spec applies every rule `bemctl validate` does (file name, base model, data files)
    loaded = [find_spec(name, settings.experiment_paths) for name in names]
    for item in loaded:
        model_class(item.spec.bem_config.variant)  # raises "not implemented yet: <variant>"
    seen = set()
    for item in loaded:
        if item.spec.experiment_name in seen:
            raise BemctlError(f"experiment {item.spec.experiment_name!r} given twice")
        seen.add(item.spec.experiment_name)
    return loaded


def load_data(
    loaded: LoadedSpec, plan: ExperimentPlan
) -> tuple[Task, list[TaskExample], list[TaskExample]]:
    task = build_task(loaded.spec.data, loaded.resolve, loaded.path)
    train, evals = task.make_splits(plan.train_size, plan.eval_size, plan.seed)
    return task, train, evals


# bump when code changes make older adapters of the same key differ (2: V1 and the router
# route prompt chunks from the prompt at prefill, V1 gains PT1 gates)
ADAPTER_KEY_VERSION = 2


def adapter_key(
    role: str,
    loaded: LoadedSpec,
    plan: ExperimentPlan,
    seed: int,
    pretrain: dict | None = None,
) -> str:
    """Fingerprint of everything that determines an arm's trained adapter: the arm's own
    config (a borrowed baseline's, e.g. AR0 inside ar1_pg, is the same as in ar0_bc), the
    base model (with `pretrain`, the embedded base's pre-training plan, when given: it
    decides the base weights), the data and training specs, the step budget, the seed."""
    spec = loaded.spec
    config = spec.bem_config
    if role == "baseline":
        borrowed = config.baseline_variant_config()
        arm = (
            borrowed.model_dump(mode="json")
            if borrowed is not None
            else {"static_lora_of": config.model_dump(mode="json")}
        )
    else:
        arm = config.model_dump(mode="json")
    payload = {
        "version": ADAPTER_KEY_VERSION,
        "arm": arm,
        "base_model": spec.model.model_dump(mode="json"),
        "data": spec.data.model_dump(mode="json"),
        "training": spec.training.model_dump(mode="json"),
        "plan": [plan.train_size, plan.steps, plan.batch_size],
        "seed": seed,
    }
    if pretrain is not None:
        payload["pretrain"] = pretrain
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _load_adapter(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _adapter_problem(path: str | None) -> str | None:
    """Why a saved adapter cannot be reused (missing, unreadable), or None."""
    from safetensors import safe_open

    if not path or not Path(path).is_file():
        return f"its adapter file is missing ({path or 'no path recorded'})"
    try:
        with safe_open(path, framework="pt") as fh:
            if not list(fh.keys()):
                return f"its adapter file {path} holds no tensors"
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        return f"its adapter file {path} is unreadable ({type(exc).__name__})"
    return None


LATENCY_NEW_TOKENS = 16  # per latency probe: prefill + this many decode steps, both arms
MEMORY_PROBE_PROMPTS = 8  # generations per arm in the tensor-memory probe


class ExperimentRunner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        options: RunOptions,
        progress: ProgressSink | None = None,
        *,
        invocation_id: str | None = None,
        job: JobContext | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.settings = settings
        self.job = job
        self.store = store  # the job's control (cancel, lease) still reads it
        # everything the protocols and the arm machinery record goes through this
        self.recorder: Recorder = recorder or SqliteRecorder(store, job.job_id if job else None)
        self.options = options
        self.progress = progress or NullProgress()
        self.device = resolve_device(settings.device)
        try:
            triton_ops.configure(settings.kernels)  # "triton" that cannot run fails here
        except triton_ops.KernelConfigError as exc:
            raise BemctlError(str(exc)) from None
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self.invocation_id = invocation_id or uuid.uuid4().hex[:12]
        self.adapter_dir = settings.store_path.parent / "adapters"

    # -- one experiment -----------------------------------------------------------------
    def run_experiment(
        self, loaded: LoadedSpec, frozen: FrozenPlan | None = None
    ) -> ExperimentOutcome:
        """The experiment under its protocol (`engine.protocols`); the verdict is left to the
        batch.

        `frozen`: the plan frozen when the job was queued; without one (a direct call) it is
        resolved from this runner's settings and options. Unfinished runs are closed by the
        caller (the job layer knows whether this was a cancel, a stopped worker or a failure).
        """
        frozen = frozen or freeze_plan(loaded.spec, self.settings, self.options)
        self._frozen = frozen
        return get_protocol(loaded.spec.protocol_name).run(self, loaded, frozen)

    def _note(self, kind: str, message: str, run_id: int | None = None) -> None:
        """A line for the progress log and, under a job, its event log (the console shows it)."""
        self.progress.log(message)
        self.recorder.note(kind, message, run_id)

    def reusable_run(
        self,
        role: str,
        seed: int,
        expected: ArmRecord,
        loaded: LoadedSpec,
        evals: list[TaskExample],
        blocked: str | None = None,
    ) -> tuple[Run, dict[str, dict[str, float]]] | None:
        """This arm's finished run from an earlier attempt of the job, with its stored scores,
        if it may stand in for training the arm now: same record (plan, base, eval set,
        device), same adapter key, adapter file readable, every metric scored on exactly this
        eval set in this order, not `blocked`. Otherwise None, and the job's log says why."""
        if self.job is None:
            return None
        done = self.recorder.finished_run_of_job(self.job.job_id, role, seed)
        if done is None:
            return None
        assert done.id is not None
        why = blocked or reuse_problem(done.plan_json, done.adapter_key, expected)
        scores: dict[str, dict[str, float]] = {}
        if why is None:
            why = _adapter_problem(done.adapter_path)
        if why is None:
            scores = self.recorder.example_scores(done.id)
            ids = [ex.id for ex in evals]
            for metric in loaded.spec.metric_names:
                if metric not in scores:
                    why = f"it has no stored {metric} scores"
                elif list(scores[metric]) != ids:
                    why = f"its stored {metric} scores are not this eval set in order"
                if why is not None:
                    break
        if why is not None:
            self._note(
                "not_reused",
                f"run {done.id} ({role}, seed {seed}) not reused: {why}; training it again",
                done.id,
            )
            return None
        return done, scores

    def check_arms(
        self,
        name: str,
        results: dict[tuple[int, str], RoleResult],
        evals: list[TaskExample],
    ) -> list[ScoredArm]:
        """Refuse (the job fails, no statistics) a comparison whose arms, as stored, differ in
        anything but the variant, or were not all scored on this eval set in order."""
        ids = tuple(ex.id for ex in evals)
        arms = []
        for (seed, role), result in results.items():
            run = self.recorder.run(result.run_id)
            assert run is not None
            try:
                record = ArmRecord.from_json(run.plan_json) if run.plan_json else None
            except (ValueError, TypeError):
                record = None
            arms.append(
                ScoredArm(
                    result.run_id,
                    role,
                    seed,
                    record,
                    ids_fingerprint(result.example_ids),
                    len(result.example_ids),
                    tuple(result.example_ids),
                )
            )
        refusal = comparison_refusal(arms, expected_ids=ids)
        if refusal is not None:
            raise BemctlError(f"{name}: {refusal}", exit_code=1)
        return arms

    def kv_check(
        self, model, base: BaseModel, evals: list[TaskExample], loaded: LoadedSpec
    ) -> KVCacheCheck:
        spec = loaded.spec
        return kv_cache_check(
            model,
            base.tokenizer,
            [ex.prompt for ex in evals[:16]],
            min(spec.data.max_new_tokens, LATENCY_NEW_TOKENS),
            self.device,
            spec.model.max_length,
        )

    def tensor_memory(
        self,
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
        batch = {
            k: t.to(self.device) for k, t in collate(rows, base.tokenizer.pad_token_id).items()
        }
        extras = [ex.features for ex in task_batch]
        prompts = [ex.prompt for ex in evals[:MEMORY_PROBE_PROMPTS]]
        new_tokens = min(spec.data.max_new_tokens, 2 * LATENCY_NEW_TOKENS)
        phase = self.progress.phase(f"{spec.experiment_name}: peak tensor memory", len(arms))
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
                        self.device,
                        spec.model.max_length,
                        stop_early=False,
                    )

            readings[role] = measure_tensor_peak(
                model,
                lambda model=model: training_loss(model, batch, extras),
                generate,
                self.device,
            )
            self.recorder.measured(
                result.run_id,
                peak_memory_bytes=readings[role].peak_bytes,
                memory_kind=readings[role].kind,
                tensor_peak_train_bytes=readings[role].train_bytes,
                tensor_peak_generate_bytes=readings[role].generate_bytes,
            )
            phase.advance(1, role)
        phase.done()
        return readings

    def load_base(self, name: str) -> BaseModel:
        """The frozen base; an embedded one pre-trained as the job's frozen plan says."""
        p = self._frozen.pretrain or self.settings.pretrain.model_dump()
        plan = PretrainPlan(
            steps=p["steps"],
            batch_size=p["batch_size"],
            learning_rate=p["learning_rate"],
            corpus_docs=p["corpus_docs"],
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
        model = build_adapter_model(role, loaded.spec.bem_config, base.model, seed, loaded.path)
        return model.to(self.device)

    def train_and_evaluate(
        self,
        role: str,
        run_id: int,
        loaded: LoadedSpec,
        plan: ExperimentPlan,
        base: BaseModel,
        task: Task,
        train: list[TaskExample],
        evals: list[TaskExample],
        seed: int,
        warm_start: Path | None = None,
    ) -> RoleResult:
        spec = loaded.spec
        self.recorder.run_started(run_id)
        model = self._build(role, loaded, base, seed)
        self.recorder.measured(  # what its step rows measure (None: language-model loss)
            run_id, curve_quantity=model.curve_quantity
        )
        total, trainable = model.parameter_counts()
        source = None
        if role == "baseline" and spec.bem_config.baseline_variant_config() is not None:
            # AR1's baseline is AR0: an identical AR0 arm trained before is taken, not retrained
            source = self.recorder.finished_run_with_adapter_key(
                adapter_key(role, loaded, plan, seed, self._frozen.pretrain)
            )
        if warm_start is not None:
            model.load_trainable_state_dict(_load_adapter(warm_start))
        tplan = TrainPlan(
            steps=plan.steps,
            batch_size=plan.batch_size,
            learning_rate=spec.training.learning_rate,
            warmup_steps=min(spec.training.warmup_steps, plan.steps // 2),
            gradient_clip=spec.training.gradient_clip,
            weight_decay=spec.training.weight_decay,
            seed=seed,
            max_length=spec.model.max_length,
            max_new_tokens=spec.data.max_new_tokens,
            quick=self.options.quick,
        )
        if source is not None:
            n_steps = 0  # nothing to train: the adapter comes from `source`
        else:
            n_steps = model.training_steps(tplan)
        if n_steps != plan.steps:
            self.recorder.measured(run_id, total_steps=n_steps)
        phase = self.progress.phase(f"{spec.experiment_name}: train {role} (seed {seed})", n_steps)

        steps = self.recorder.steps(run_id)

        def on_step(step: int, loss: float, lr: float, elapsed: float) -> None:
            steps.add(step, loss, lr, elapsed)
            phase.advance(1, f"loss {loss:.3f}")  # a cancel is noticed here, between steps

        try:
            if source is not None:
                assert source.adapter_path is not None
                model.load_trainable_state_dict(_load_adapter(Path(source.adapter_path)))
                model.eval()
                self.recorder.measured(run_id, adapter_source_run_id=source.id)
                self.progress.log(
                    f"{spec.experiment_name} {role}: adapter taken from run {source.id} "
                    f"(trained identically before), not retrained"
                )
            elif model.has_own_training:  # staged training (the router)
                model.train_arm(
                    base.tokenizer, task, train, tplan, self.device, on_step, self.progress.log
                )
            else:
                pairs = [(ex.prompt, task.target(ex), ex.features) for ex in train]
                train_adapter(model, base.tokenizer, pairs, tplan, self.device, on_step)
        except TrainingDiverged as exc:
            steps.flush()
            self.recorder.finished(run_id, "failed", str(exc))
            raise BemctlError(
                f"{spec.experiment_name} {role}: training failed: {exc}", exit_code=1
            ) from None
        except BaseException:
            with contextlib.suppress(Exception):  # never mask why training stopped
                steps.flush()  # the curve up to a cancel or a Ctrl-C is evidence too
            raise
        steps.flush()
        phase.done()
        adapter_path = self._save_adapter(run_id, model)
        probe = collate(
            [
                encode_example(base.tokenizer, ex.prompt, task.target(ex), spec.model.max_length)
                for ex in evals[:8]
            ],
            base.tokenizer.pad_token_id,
        )
        flops = flops_per_token(
            model, probe["input_ids"].to(self.device), probe["attention_mask"].to(self.device)
        )
        phase = self.progress.phase(
            f"{spec.experiment_name}: evaluate {role} (seed {seed})", len(evals)
        )
        out = evaluate(
            model,
            base.tokenizer,
            task,
            evals,
            spec.metric_names,
            self.device,
            spec.data.max_new_tokens,
            spec.model.max_length,
            on_example=lambda i: phase.advance(1),
        )
        phase.done()
        variant_stats = self._variant_statistics(model, base, task, evals, out, plan, loaded)
        example_ids = [ex.id for ex in evals]
        self.recorder.evaluated(run_id, out.scores, out.predictions, example_ids)
        self.recorder.measured(
            run_id,
            params_total=total,
            params_trainable=trainable,
            flops_per_token=flops,
            adapter_path=str(adapter_path),
            variant_stats_json=json.dumps(variant_stats) if variant_stats is not None else None,
        )
        self.recorder.finished(run_id, "succeeded")
        return RoleResult(
            run_id,
            model,
            out.scores,
            total,
            trainable,
            flops,
            adapter_path,
            out.corpus_stats,
            variant_stats,
            example_ids,
        )

    def _variant_statistics(
        self,
        model,
        base: BaseModel,
        task: Task,
        evals: list[TaskExample],
        out,
        plan: ExperimentPlan,
        loaded: LoadedSpec,
    ) -> dict | None:
        """What a variant measures about itself after evaluation (the router's plan length,
        switch rate, projections, overlap, evidence monotonicity; V2's gate movement), plus
        the routing dynamics of every variant that routes per position (V1, the router:
        `engine.evaluation.dynamics`, under "dynamics"); None for the others."""
        routes = model.routes
        if not model.has_variant_statistics and not routes:
            return None
        spec = loaded.spec
        phase = self.progress.phase(f"{spec.experiment_name}: variant statistics", 1)
        result: dict = {}
        if model.has_variant_statistics:
            predictions = {example_id: text for example_id, text, _, _ in out.predictions}
            result = model.variant_statistics(
                base.tokenizer,
                task,
                evals,
                predictions,
                self.device,
                max_new_tokens=spec.data.max_new_tokens,
                max_length=spec.model.max_length,
                seed=plan.seed,
                sequences=out.sequences,
            )
        if routes:
            result["dynamics"] = routing_dynamics(model, out.sequences, self.device)
        phase.advance(1)
        phase.done()
        return result

    def reload_arm(
        self,
        run: Run,
        scores: dict[str, dict[str, float]],
        loaded: LoadedSpec,
        base: BaseModel,
        task: Task,
        evals: list[TaskExample],
    ) -> RoleResult:
        """An arm finished by an earlier attempt of this job (checked by `reusable_run`):
        its adapter, scores (metric -> example -> value, in position order) and measurements
        come back from the store; corpus statistics are recomputed from the stored
        predictions (they are a deterministic function of them)."""
        assert run.id is not None and run.adapter_path is not None
        self._note(
            "reused",
            f"reusing run {run.id} ({run.role}, seed {run.seed}) from attempt {run.attempt}: "
            "same plan, eval set and adapter key",
            run.id,
        )
        model = self._build(run.role, loaded, base, run.seed)
        model.load_trainable_state_dict(_load_adapter(Path(run.adapter_path)))
        by_example: dict[str, dict[str, float]] = {}
        for metric, values in scores.items():
            for example_id, value in values.items():
                by_example.setdefault(example_id, {})[metric] = value
        corpus: dict = {}
        corpus_metrics = [m for m in loaded.spec.metric_names if task.metric(m).corpus_level]
        if corpus_metrics:
            outputs = self.recorder.predictions(run.id)
            for metric in corpus_metrics:
                corpus[metric] = np.stack(
                    [
                        np.asarray(task.corpus_stats(metric, outputs[ex.id], ex), dtype=float)
                        for ex in evals
                    ]
                )
        return RoleResult(
            run.id,
            model,
            by_example,
            run.params_total or 0,
            run.params_trainable or 0,
            run.flops_per_token or 0.0,
            Path(run.adapter_path),
            corpus,
            json.loads(run.variant_stats_json) if run.variant_stats_json else None,
            list(scores[loaded.spec.metric_names[0]]),
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

    def measure_latency_pair(
        self,
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
        probes = [ex.prompt for ex in evals[: min(len(evals), 16)]]
        phases: list = []

        def start_batch(first: int, n: int):
            if phases:
                phases[-1].done()
                label = f"latency: {n} more rounds (the ratio's interval straddles the budget)"
            else:
                label = "latency (interleaved)"
            phases.append(self.progress.phase(f"{spec.experiment_name}: {label}", n))
            return lambda r: phases[-1].advance(1)

        pregen: list[list[float]] = [[], []]

        def runner(model, index: int):
            def run(r: int) -> None:
                routing: dict = {}
                greedy_generate(
                    model,
                    base.tokenizer,
                    probes[r % len(probes)],
                    min(spec.data.max_new_tokens, LATENCY_NEW_TOKENS),
                    self.device,
                    spec.model.max_length,
                    stop_early=False,  # same number of tokens for both arms
                    routing=routing,
                )
                if "pregen_ms" in routing:  # once-per-prompt routing phase (V2), on its own
                    pregen[index].append(routing["pregen_ms"])

            return run

        budget = plan.latency_budget if spec.acceptance_gates.performance_gates_pass else None
        measured = measure_latency(
            [runner(baseline_model, 0), runner(variant_model, 1)],
            plan.latency_rounds,
            budget,
            seed=plan.seed,
            start_batch=start_batch,
        )
        phases[-1].done()
        if measured.rounds > measured.rounds_planned:
            self._note(
                "latency_extended",
                f"{spec.experiment_name}: latency measured over {measured.rounds} rounds "
                f"(planned {measured.rounds_planned}): ratio {measured.ratio:.3f}, "
                f"interval [{measured.low:.3f}, {measured.high:.3f}], budget {budget}",
            )
        return measured, [float(np.median(p)) if p else None for p in pregen]

    def metric_stats(
        self,
        metric: str,
        task: Task,
        evals: list[TaskExample],
        per_seed: list[tuple[RoleResult, RoleResult]],
        plan: ExperimentPlan,
    ) -> MetricOutcome:
        """Pair by evaluation position after averaging each arm over seeds; keep each seed's
        difference. Every arm was checked (`check_arms`) to be scored on this eval set in
        order, so position i is the same example in every arm and in the corpus statistics."""
        if task.metric(metric).corpus_level:
            return compare_corpus(
                metric,
                [b.corpus_stats[metric] for b, _ in per_seed],
                [v.corpus_stats[metric] for _, v in per_seed],
                lambda summed, m=metric: task.corpus_score(m, summed),
                plan,
            )
        return compare_paired(
            metric,
            [b.column(metric) for b, _ in per_seed],
            [v.column(metric) for _, v in per_seed],
            plan,
        )
