"""Turn a spec + bemctl.toml + command-line flags into the concrete numbers one run uses.

Precedence: flags > spec > bemctl.toml. `--quick` replaces data and step counts with the
toml's [quick] sizes, so a smoke run is cheap but otherwise identical in procedure.

A queued job carries its plan frozen (`FrozenPlan`, job.plan_json): resolved once, on the
machine that queued it, so a worker with another bemctl.toml - or a retry hours later - runs
exactly the experiment that was queued. Only what does not change results stays worker-local
(device, kernels, threads, store, cache directory).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from engine.settings import Settings
from engine.spec import ExperimentSpec


@dataclass(frozen=True)
class RunOptions:
    quick: bool = False
    seed: int | None = None
    target_power: float | None = None
    bootstrap_samples: int | None = None
    fdr_alpha: float | None = None
    budget_tolerance: float | None = None


@dataclass(frozen=True)
class ExperimentPlan:
    seed: int  # data split and bootstrap seed
    seeds: tuple[int, ...]  # one training run of baseline and variant per seed
    train_size: int
    eval_size: int
    steps: int
    batch_size: int
    latency_rounds: int
    bootstrap_samples: int
    confidence_level: float
    fdr_alpha: float
    budget_tolerance: float
    latency_budget: float
    memory_budget: float
    target_power: float
    # how the cost probes run ([measure] in bemctl.toml)
    measure_new_tokens: int = 16
    probe_prompts: int = 16
    memory_probe_prompts: int = 8


# fields added after plans were first frozen in queued jobs, with the value such a job ran
# under; a plan stored without them gets these (every other field must be present)
_ADDED_FIELDS = {"measure_new_tokens": 16, "probe_prompts": 16, "memory_probe_prompts": 8}


def _first(*values):
    return next(v for v in values if v is not None)


def make_plan(spec: ExperimentSpec, settings: Settings, options: RunOptions) -> ExperimentPlan:
    v, c = spec.validation, spec.constraints
    if options.quick:
        q = settings.quick
        train_size, eval_size, batch, steps = (
            q.train_examples,
            q.eval_examples,
            q.batch_size,
            q.train_steps,
        )
        rounds, boot_default = q.latency_rounds, q.bootstrap_samples
    else:
        train_size, eval_size = spec.data.train_size, spec.data.eval_size
        batch = spec.training.batch_size
        epochs_steps = spec.training.max_epochs * math.ceil(train_size / batch)
        steps = min(epochs_steps, spec.training.max_steps or epochs_steps)
        rounds = settings.measure.latency_rounds
        boot_default = _first(v.bootstrap_samples, settings.bootstrap_samples)
    seed = _first(options.seed, settings.seed)
    if options.seed is not None or options.quick or not spec.seeds:
        seeds: tuple[int, ...] = (seed,)  # --seed and --quick mean one seed
    else:
        seeds = tuple(spec.seeds)
    return ExperimentPlan(
        seed=seed,
        seeds=seeds,
        train_size=train_size,
        eval_size=eval_size,
        steps=steps,
        batch_size=batch,
        latency_rounds=rounds,
        bootstrap_samples=_first(options.bootstrap_samples, boot_default),
        confidence_level=v.confidence_level,
        fdr_alpha=_first(options.fdr_alpha, v.fdr_alpha, settings.fdr_alpha),
        budget_tolerance=_first(
            options.budget_tolerance, c.budget_tolerance, settings.budget_tolerance
        ),
        latency_budget=_first(c.latency_budget, settings.latency_budget),
        memory_budget=_first(c.vram_budget, settings.memory_budget),
        target_power=_first(options.target_power, settings.target_power),
        measure_new_tokens=settings.measure.new_tokens,
        probe_prompts=settings.measure.probe_prompts,
        memory_probe_prompts=settings.measure.memory_prompts,
    )


PLAN_FORMAT = 1


@dataclass(frozen=True)
class FrozenPlan:
    """Everything in the queuing machine's settings that determines a job's results.

    `experiment`: every size, step count, eval size, seed and budget (`ExperimentPlan`).
    `pretrain`: the pre-training plan of the embedded base model (it keys the base-model
    cache, so it decides which base weights the adapters sit on); None for a local model
    directory, whose weights do not depend on settings.
    """

    experiment: ExperimentPlan
    pretrain: dict[str, Any] | None

    def experiment_dict(self) -> dict[str, Any]:
        """The experiment plan as JSON values (tuples as lists), as stored."""
        return json.loads(json.dumps(dataclasses.asdict(self.experiment)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PLAN_FORMAT,
                "experiment": self.experiment_dict(),
                "pretrain": self.pretrain,
            },
            sort_keys=True,
        )

    def differences(self, other: FrozenPlan) -> list[tuple[str, Any, Any]]:
        """(field, self's value, other's value) for every plan or pre-training field that
        differs."""
        return field_differences(self.experiment_dict(), other.experiment_dict()) + (
            field_differences(self.pretrain, other.pretrain, "pretrain")
        )

    @classmethod
    def from_json(cls, text: str) -> FrozenPlan:
        """Raises ValueError naming what is wrong (a plan from a newer bemctl, a bad field)."""
        data = json.loads(text)
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"plan format {data.get('format')!r}, expected {PLAN_FORMAT}")
        return cls(plan_from_dict(data["experiment"]), data.get("pretrain"))


def field_differences(
    a: dict[str, Any] | None, b: dict[str, Any] | None, prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """(name, a's value, b's value) for each key whose values differ; one entry named
    `prefix` when only one side is None."""
    if a is None or b is None:
        return [] if a is b else [(prefix or "plan", a, b)]
    dot = f"{prefix}." if prefix else ""
    return [
        (f"{dot}{key}", a.get(key), b.get(key))
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]


def complete_plan_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A stored plan with the fields added since it was stored, at the values it ran under."""
    return {**{k: v for k, v in _ADDED_FIELDS.items() if k not in data}, **data}


def plan_from_dict(data: dict[str, Any]) -> ExperimentPlan:
    """The `ExperimentPlan` that `dataclasses.asdict` gave (JSON turns tuples into lists)."""
    names = {f.name for f in dataclasses.fields(ExperimentPlan)}
    data = complete_plan_dict(data)
    if set(data) != names:
        extra, missing = sorted(set(data) - names), sorted(names - set(data))
        raise ValueError(f"plan fields differ (unknown: {extra}, missing: {missing})")
    return ExperimentPlan(**{**data, "seeds": tuple(data["seeds"])})


def freeze_plan(spec: ExperimentSpec, settings: Settings, options: RunOptions) -> FrozenPlan:
    """Resolve the plan with these settings and options, for storing with the queued job."""
    from engine.models.base_model import EMBEDDED_PREFIX

    pretrain = (
        settings.pretrain.model_dump(mode="json")
        if spec.model.base_model.startswith(EMBEDDED_PREFIX)
        else None
    )
    return FrozenPlan(make_plan(spec, settings, options), pretrain)
