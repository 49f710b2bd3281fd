"""The OL protocol: one deployed adapter, a drifting stream, two ways of serving it.

Per training seed (the stream itself comes from the plan's data seed, so every seed's arms
are scored on the same live examples in the same positions):
1. the deployed adapter (a static LoRA of the spec's geometry) trains on the stream's history
   part, as any arm trains (the baseline run holds its curve);
2. the online loop (`loop.run_live`) serves the live part: each example is scored by the
   deployed weights (the baseline arm: the same adapter never updated) and by OL's serving
   weights (the variant arm) before the shadow learns from it;
3. after the stream both arms are scored on the forgetting set.
The per-example live scores are the paired evidence for the shared statistics; forgetting,
the canary record and the drift/rollback record are OL's own gates and sections
(`engine.protocols.online.report`). The two serving models' latency and tensor memory are
measured as the A/B protocol measures its arms'.

Crash safety: the loop's state is checkpointed after every live batch
(`engine.protocols.online.checkpoint`), keyed by the job and the conditions; a retried job
restores the deployed adapter and the stream position from it, writes the timeline so far
into its new runs and goes on, so no live example is scored twice in the evidence or skipped.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from engine import arm_costs
from engine.adapter_files import adapter_key, save_adapter
from engine.arm_reuse import check_arms
from engine.arms import ArmRecord, RoleResult
from engine.evaluation.measure import PeakMemory, flops_per_token
from engine.outcome import ExperimentOutcome
from engine.protocols.ab import cost_details, memory_ratio
from engine.protocols.base import ExperimentProtocol
from engine.protocols.evidence import compare_paired, mark_identical
from engine.protocols.online.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.protocols.online.data import OnlineData, online_data
from engine.protocols.online.drift import DriftMonitor
from engine.protocols.online.lm import LMSetup, history_fisher, make_score, make_train
from engine.protocols.online.loop import LoopConfig, LoopState, StreamEvent, TimelinePoint, run_live
from engine.protocols.online.regularizers import make_penalty, restore, trainable
from engine.protocols.online.report import (
    StreamResult,
    forgetting_comparisons,
    online_gates,
    online_sections,
)
from engine.tasks.qa_task import SyntheticQATask
from engine.training import collate, encode_example, train_adapter
from store.stream import EventRow, PointRow

if TYPE_CHECKING:
    from engine.models.base_model import BaseModel
    from engine.models.tokenizer import TextTokenizer
    from engine.plan import ExperimentPlan, FrozenPlan
    from engine.runner import ExperimentRunner
    from engine.spec import LoadedSpec
    from engine.variants.online.config import OnlineShadowConfig


class OnlineProtocol(ExperimentProtocol):
    name = "online"
    description = "deployed adapter vs the same adapter learning online in shadow mode"

    def run(
        self, runner: ExperimentRunner, loaded: LoadedSpec, frozen: FrozenPlan
    ) -> ExperimentOutcome:
        spec, plan, recorder = loaded.spec, frozen.experiment, runner.recorder
        config: OnlineShadowConfig = spec.bem_config  # type: ignore[assignment]
        experiment_id = recorder.open_experiment(
            spec.experiment_name, spec.canonical_json(), spec.spec_hash(), str(loaded.path)
        )
        data = online_data(
            config,
            seed=plan.seed,
            train_size=plan.train_size,
            eval_size=plan.eval_size,
            quick=runner.options.quick,
            resolve=loaded.path.parent,
        )
        evals = data.live_examples + data.forgetting  # what each run is scored on, in order
        run_ids: dict[tuple[int, str], int] = {}
        for seed in plan.seeds:
            for role in ("baseline", "variant"):
                record = ArmRecord.of(
                    frozen,
                    adapter_key(role, loaded, plan, seed, frozen.pretrain),
                    evals,
                    runner.device.type,
                )
                run_ids[seed, role] = recorder.open_run(
                    experiment_id=experiment_id,
                    invocation_id=runner.invocation_id,
                    role=role,
                    seed=seed,
                    quick=runner.options.quick,
                    device=str(runner.device),
                    total_steps=plan.steps if role == "baseline" else 0,
                    job_id=runner.job.job_id if runner.job else None,
                    attempt=runner.job.attempt if runner.job else 1,
                    adapter_key=record.adapter_key,
                    plan_json=record.to_json(),
                )
        gpu_watch = PeakMemory(runner.device)
        gpu_watch.__enter__()
        try:
            base = runner.load_base(spec.model.base_model)
            task = SyntheticQATask(n_facts=spec.data.n_facts)  # QA targets and metrics
            streams: list[StreamResult] = []
            results: dict[tuple[int, str], RoleResult] = {}
            for seed in plan.seeds:
                stream, arms = _run_stream(
                    runner,
                    loaded,
                    frozen,
                    base,
                    task,
                    data,
                    seed,
                    {r: run_ids[seed, r] for r in ("baseline", "variant")},
                )
                streams.append(stream)
                for role, result in arms.items():
                    results[seed, role] = result
                    if seed != plan.seeds[0]:
                        result.model = None  # only the first seed's are timed
            arms_checked = check_arms(runner, spec.experiment_name, results, evals)
            first = plan.seeds[0]
            b, v = results[first, "baseline"], results[first, "variant"]
            latency, pregen = arm_costs.measure_latency_pair(
                runner, b.model, v.model, base, data.live_examples, plan, loaded
            )
            memory = arm_costs.tensor_memory(
                runner,
                {"baseline": b, "variant": v},
                loaded,
                plan,
                base,
                task,
                data.history,
                data.live_examples,
            )
        finally:
            gpu_watch.__exit__(None, None, None)
        watched = gpu_watch.reading
        for i, role in enumerate(("baseline", "variant")):
            samples = latency.baseline_ms if i == 0 else latency.variant_ms
            recorder.measured(
                run_ids[first, role],
                latency_p50_ms=float(sorted(samples)[len(samples) // 2]),
                latency_samples_json=json.dumps([round(x, 4) for x in samples]),
                load_json=json.dumps(latency.load),
                rss_peak_bytes=watched.rss_peak_bytes if watched else None,
            )
        phase = runner.progress.phase(
            f"{spec.experiment_name}: statistics (BCa, tests)", len(spec.metric_names) + 1
        )
        live_ids = [ex.id for ex in data.live_examples]
        per_seed = [(results[s, "baseline"], results[s, "variant"]) for s in plan.seeds]
        metrics, differences = [], {}
        for metric in spec.metric_names:
            base_cols = [[r.scores[i][metric] for i in live_ids] for r, _ in per_seed]
            var_cols = [[r.scores[i][metric] for i in live_ids] for _, r in per_seed]
            metrics.append(compare_paired(metric, base_cols, var_cols, plan))
            differences[metric] = [
                torch.tensor(vc).double().numpy() - torch.tensor(bc).double().numpy()
                for bc, vc in zip(base_cols, var_cols, strict=True)
            ]
            phase.advance(1, metric)
        forgetting = forgetting_comparisons(streams, spec.metric_names, plan)
        phase.advance(1, "forgetting")
        phase.done()
        return ExperimentOutcome(
            name=spec.experiment_name,
            spec=loaded,
            plan=plan,
            experiment_id=experiment_id,
            baseline_run_id=b.run_id,
            variant_run_id=v.run_id,
            param_ratio=v.params_trainable / b.params_trainable,
            flop_ratio=v.flops / b.flops,
            latency_ratio=latency.ratio,
            pregen_ms=pregen[1],
            variant_stats=v.variant_stats,
            sections=online_sections(streams, forgetting, config),
            protocol_gates=online_gates(streams, forgetting, config),
            memory_ratio=memory_ratio(memory),
            metrics=mark_identical(metrics, differences),
            seed_runs=[
                {
                    "seed": s,
                    "baseline_run_id": run_ids[s, "baseline"],
                    "variant_run_id": run_ids[s, "variant"],
                }
                for s in plan.seeds
            ],
            arms=[arm.to_dict() for arm in arms_checked],
            costs=cost_details(latency, memory, watched.rss_peak_bytes if watched else None),
        )


def checkpoint_path(runner: ExperimentRunner, seed: int) -> Path:
    """One file per job and seed; a direct call (no job) never finds an earlier one."""
    owner = f"job{runner.job.job_id}" if runner.job else f"direct-{runner.invocation_id}"
    return runner.adapter_dir.parent / "online" / f"{owner}-seed{seed}.safetensors"


def _conditions_key(loaded: LoadedSpec, frozen: FrozenPlan, seed: int, data: OnlineData) -> str:
    payload = {
        "variant": adapter_key("variant", loaded, frozen.experiment, seed, frozen.pretrain),
        "plan": frozen.experiment_dict(),
        "stream": [ex.id for ex in data.live_examples][:: max(1, len(data.live_examples) // 64)],
        "source": data.source,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _points(points: list[TimelinePoint]) -> list[PointRow]:
    return [
        PointRow(p.batch, p.phase, p.serving, p.shadow, p.deployed, p.serving_source)
        for p in points
    ]


def _events(events: list[StreamEvent], first_seq: int) -> list[EventRow]:
    return [EventRow(first_seq + i, e.batch, e.kind, e.detail) for i, e in enumerate(events)]


def _run_stream(
    runner: ExperimentRunner,
    loaded: LoadedSpec,
    frozen: FrozenPlan,
    base: BaseModel,
    task: SyntheticQATask,
    data: OnlineData,
    seed: int,
    runs: dict[str, int],
) -> tuple[StreamResult, dict[str, RoleResult]]:
    spec, plan, recorder = loaded.spec, frozen.experiment, runner.recorder
    config: OnlineShadowConfig = spec.bem_config  # type: ignore[assignment]
    name = spec.experiment_name
    setup = LMSetup(
        base.tokenizer,
        task,
        runner.device,
        spec.data.max_new_tokens,
        spec.model.max_length,
        tuple(spec.metric_names),
    )
    model = runner.build_arm("baseline", loaded, base, seed)
    path, key = checkpoint_path(runner, seed), _conditions_key(loaded, frozen, seed, data)
    found = load_checkpoint(path, key, runner.device)
    for role in ("baseline", "variant"):
        recorder.run_started(runs[role])
    if isinstance(found, Checkpoint):
        state, fisher = found.state, found.fisher
        restore(model, state.weights["deployed"])
        recorder.measured(
            runs["baseline"], adapter_source_run_id=found.runs.get("baseline"), total_steps=0
        )
        runner.note(
            "resume",
            f"{name} seed {seed}: resumed the stream at live batch {state.next_batch} from the "
            f"checkpoint of run {found.runs.get('variant')}; deployed adapter restored, "
            "not retrained",
            runs["variant"],
        )
        recorder.streamed(
            runs["variant"], _points(state.record.timeline), _events(state.record.events, 0)
        )
        resumed_at: int | None = state.next_batch
    else:
        if found != "no checkpoint":
            runner.note("resume", f"{name} seed {seed}: {found}; the stream starts over")
        _train_deployed(
            runner, loaded, plan, model, base.tokenizer, task, data, seed, runs["baseline"]
        )
        fisher = None
        if config.ol_regularizer == "ewc":
            fphase = runner.progress.phase(f"{name}: Fisher of the history (seed {seed})", 1)
            fisher = history_fisher(model, setup, data.history[: config.fisher_examples])
            fphase.advance(1)
            fphase.done()
        state = LoopState.start(model)
        save_checkpoint(path, key, state, fisher, runs)
        resumed_at = None
    penalty = make_penalty(config.ol_regularizer, model, config.ewc_lambda, fisher)
    loop_config = LoopConfig(
        canary_every=config.canary_every,
        canary_fraction=config.canary_fraction,
        canary_window=config.canary_window,
        margin=config.non_inferiority_margin,
        alpha=config.canary_alpha,
        metric=spec.metric_names[0],
    )
    monitor = DriftMonitor(
        window=config.drift_window, alpha=config.drift_alpha, vote=config.drift_vote
    )
    phase = runner.progress.phase(f"{name}: live stream (seed {seed})", len(data.live))
    if state.next_batch:
        phase.advance(state.next_batch, "resumed")

    def after_batch(b: int, st: LoopState, point: TimelinePoint, events: list) -> None:
        # checkpoint first: a kill between the two leaves the batch in the checkpoint, and
        # the retry writes every point the checkpoint holds into its own run
        save_checkpoint(path, key, st, fisher, runs)
        first_seq = len(st.record.events) - len(events)
        recorder.streamed(runs["variant"], _points([point]), _events(events, first_seq))
        for e in events:
            if e.kind != "canary":
                runner.note(
                    e.kind, f"{name} seed {seed} live batch {b}: {e.detail}", runs["variant"]
                )
        phase.advance(1, f"serving {point.serving:.2f}, shadow {point.shadow:.2f}")

    started = time.monotonic()
    state = run_live(
        model,
        data.live,
        data.forgetting[: config.canary_forgetting_examples],
        score=make_score(setup),
        train=make_train(
            setup, steps=config.shadow_steps, learning_rate=config.shadow_learning_rate, seed=seed
        ),
        penalty=penalty,
        monitor=monitor,
        config=loop_config,
        state=state,
        after_batch=after_batch,
    )
    phase.done()
    loop_s = time.monotonic() - started
    score = make_score(setup)
    fphase = runner.progress.phase(f"{name}: forgetting set (seed {seed})", 2)
    forgetting_online = score(model, data.forgetting)  # final serving weights
    fphase.advance(1, "OL")
    serving_weights = {n: p.detach().clone() for n, p in trainable(model).items()}
    deployed_model = runner.build_arm("baseline", loaded, base, seed)
    restore(deployed_model, state.weights["deployed"])
    forgetting_deployed = score(deployed_model, data.forgetting)
    fphase.advance(1, "deployed")
    fphase.done()
    shift = _relative_shift(serving_weights, state.weights["deployed"])
    rec = state.record
    stream = StreamResult(
        seed, state, forgetting_deployed, forgetting_online, shift, data.source, resumed_at
    )
    evals = data.live_examples + data.forgetting
    ids = [ex.id for ex in evals]
    scores = {
        "baseline": {**rec.deployed_scores, **_by_id(data.forgetting, forgetting_deployed)},
        "variant": {**rec.serving_scores, **_by_id(data.forgetting, forgetting_online)},
    }
    models = {"baseline": deployed_model, "variant": model}
    probe = collate(
        [
            encode_example(base.tokenizer, ex.prompt, task.target(ex), spec.model.max_length)
            for ex in data.live_examples[:8]
        ],
        base.tokenizer.pad_token_id,
    )
    kinds = [e.kind for e in rec.events]
    online_stats = {
        "online": {
            "live_batches": len(rec.timeline),
            "promotions": kinds.count("promotion"),
            "rollbacks": kinds.count("rollback"),
            "drift_alarms": kinds.count("drift_alarm"),
            "canary_decisions": len(rec.canaries),
            "learnt_served_share": (
                sum(p.serving_source != "deployed" for p in rec.timeline) / len(rec.timeline)
                if rec.timeline
                else 0.0
            ),
            "relative_weight_shift": shift,
            "loop_seconds": loop_s,
            "resumed_at": resumed_at,
            "source": data.source,
        }
    }
    results = {}
    for role in ("baseline", "variant"):
        m = models[role]
        total, trainable_n = m.parameter_counts()
        flops = flops_per_token(
            m, probe["input_ids"].to(runner.device), probe["attention_mask"].to(runner.device)
        )
        adapter_path = save_adapter(runner.adapter_dir, runs[role], m)
        recorder.evaluated(runs[role], scores[role], [], ids)
        stats = online_stats if role == "variant" else None
        recorder.measured(
            runs[role],
            params_total=total,
            params_trainable=trainable_n,
            flops_per_token=flops,
            adapter_path=str(adapter_path),
            variant_stats_json=json.dumps(stats) if stats is not None else None,
        )
        recorder.finished(runs[role], "succeeded")
        results[role] = RoleResult(
            runs[role],
            m,
            scores[role],
            total,
            trainable_n,
            flops,
            adapter_path,
            variant_stats=stats,
            example_ids=ids,
        )
    path.unlink(missing_ok=True)  # the results are in the store now
    return stream, results


def _train_deployed(
    runner: ExperimentRunner,
    loaded: LoadedSpec,
    plan: ExperimentPlan,
    model: torch.nn.Module,
    tokenizer: TextTokenizer,
    task: SyntheticQATask,
    data: OnlineData,
    seed: int,
    run_id: int,
) -> None:
    """The deployed adapter: trained on the history part as any arm trains."""
    name = loaded.spec.experiment_name
    tplan = runner.train_plan(loaded, plan, seed)
    phase = runner.progress.phase(f"{name}: train deployed adapter (seed {seed})", plan.steps)
    steps = runner.recorder.steps(run_id)

    def on_step(step: int, loss: float, lr: float, elapsed: float) -> None:
        steps.add(step, loss, lr, elapsed)
        phase.advance(1, f"loss {loss:.3f}")

    pairs = [(ex.prompt, task.target(ex), ex.features) for ex in data.history]
    try:
        train_adapter(model, tokenizer, pairs, tplan, runner.device, on_step)
    finally:
        steps.flush()
    phase.done()


def _by_id(examples, scores) -> dict[str, dict[str, float]]:
    return {ex.id: s for ex, s in zip(examples, scores, strict=True)}


def _relative_shift(weights: dict, anchor: dict) -> float:
    num = sum(float((weights[n] - anchor[n]).pow(2).sum()) for n in anchor)
    den = sum(float(anchor[n].pow(2).sum()) for n in anchor)
    return (num / den) ** 0.5 if den > 0 else 0.0
