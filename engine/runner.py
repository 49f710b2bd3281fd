"""One queued job's context, and training and scoring an adapter arm in it.

`ExperimentRunner.run_experiment` hands the spec to its protocol (`engine.protocols`; V1-V4 and
the router: the A/B protocol, `engine.protocols.ab`). The runner is what a protocol gets: the
settings, device, progress sink, recorder, the job and its attempt, and the one thing every
protocol that trains arms needs - building an arm on the frozen base, training it with step
losses streamed to the recorder, evaluating it on every eval example and saving its adapter
(`train_and_evaluate`). The rest of the arm machinery is beside it, each part in its module:
reusing or refusing arms (`engine.arm_reuse`), the cost measurements (`engine.arm_costs`),
adapter files and keys (`engine.adapter_files`), per-metric statistics of the paired evidence
(`engine.protocols.evidence`).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import triton_ops
from engine.adapter_files import adapter_key, load_adapter, save_adapter
from engine.arms import RoleResult
from engine.device import resolve_device
from engine.evaluation.dynamics import routing_dynamics
from engine.evaluation.measure import flops_per_token
from engine.evaluation.scoring import evaluate
from engine.models.base_model import BaseModel, PretrainPlan, load_base_model
from engine.outcome import ExperimentOutcome
from engine.plan import ExperimentPlan, FrozenPlan, RunOptions, freeze_plan
from engine.progress import NullProgress, ProgressSink
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
)
from engine.variants.build import build_adapter_model
from engine.variants.registry import model_class
from store.db import Store
from store.errors import BemctlError
from store.recorder import SqliteRecorder


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

    def note(self, kind: str, message: str, run_id: int | None = None) -> None:
        """A line for the progress log and, under a job, its event log (the console shows it)."""
        self.progress.log(message)
        self.recorder.note(kind, message, run_id)

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

    def build_arm(
        self, role: str, loaded: LoadedSpec, base: BaseModel, seed: int
    ) -> torch.nn.Module:
        model = build_adapter_model(role, loaded.spec.bem_config, base.model, seed, loaded.path)
        return model.to(self.device)

    def train_plan(self, loaded: LoadedSpec, plan: ExperimentPlan, seed: int) -> TrainPlan:
        """How an arm trains: the plan's steps and batch, the spec's optimiser settings."""
        spec = loaded.spec
        return TrainPlan(
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
        before_evaluate: Callable[[torch.nn.Module], None] | None = None,
    ) -> RoleResult:
        spec = loaded.spec
        self.recorder.run_started(run_id)
        model = self.build_arm(role, loaded, base, seed)
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
            model.load_trainable_state_dict(load_adapter(warm_start))
        tplan = self.train_plan(loaded, plan, seed)
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
                model.load_trainable_state_dict(load_adapter(Path(source.adapter_path)))
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
        adapter_path = save_adapter(self.adapter_dir, run_id, model)
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
        if before_evaluate is not None:  # e.g. the curve protocol's operating point
            before_evaluate(model)
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
