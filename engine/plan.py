"""Turn a spec + bemctl.toml + command-line flags into the concrete numbers one run uses.

Precedence: flags > spec > bemctl.toml. `--quick` replaces data and step counts with the
toml's [quick] sizes, so a smoke run is cheap but otherwise identical in procedure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bemctl.settings import Settings
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
        rounds, boot_default = 100, _first(v.bootstrap_samples, settings.bootstrap_samples)
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
    )
