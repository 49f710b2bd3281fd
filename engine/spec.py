"""Experiment specs: one YAML per experiment, validated strictly before anything trains.

The structure follows the user guide (`experiment_name`, `variant_type`, `model`,
`bem_config`, `training`, `validation`, `constraints`, `acceptance_gates`) plus `data`, which
says which task the comparison runs on. Optional numbers left out (None) fall back to
bemctl.toml, so one file sets the lab's defaults and a spec only states what it changes.

One set of rules for every entry point (`validate`, `queue`, `run`, `list`, the console, a
worker starting a job): `inspect_spec` reads the file within `engine.limits` (size, YAML
aliases, nesting: `engine.spec_yaml`), validates it (numbers are never booleans or
strings: `engine.numbers`; sizes bounded by what the task can generate and memory allows),
requires `experiment_name` to equal the file name, and checks what the spec points at
(`engine.spec_checks`: the base model directory and its positions, the data files).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine import limits
from engine.numbers import StrictNumbers
from engine.settings import MAX_SEED
from engine.stats import MIN_RESAMPLES
from engine.tasks.registry import FILE_TASKS, TASK_METRICS, TASK_NAMES
from engine.variants.registry import REGISTRY
from store.errors import BemctlError, format_validation_errors, shorten

EMBEDDED_MODEL = "embedded:tiny-gpt2"

BemConfig = Annotated[
    Union[tuple(entry.config_cls for entry in REGISTRY.values())],  # noqa: UP007
    Field(discriminator="variant"),
]
_VARIANT_TAGS = frozenset(REGISTRY)


class _Strict(StrictNumbers):
    """Unknown fields are errors; numbers are numbers (no booleans, strings, inf/nan)."""

    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    base_model: str = Field(
        EMBEDDED_MODEL,
        description="'embedded:tiny-gpt2' or a local Hugging Face model directory",
    )
    max_length: int = Field(256, ge=16, le=8192)


class TrainingSpec(_Strict):
    learning_rate: float = Field(5e-4, gt=0, le=1)
    batch_size: int = Field(16, ge=1, le=limits.BATCH_SIZE)
    max_epochs: int = Field(1, ge=1, le=limits.EPOCHS)
    max_steps: int | None = Field(
        None, ge=1, le=limits.TRAIN_STEPS, description="cap on optimiser steps"
    )
    warmup_steps: int = Field(0, ge=0, le=limits.TRAIN_STEPS)
    gradient_clip: float = Field(1.0, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class DataSpec(_Strict):
    task: str = "synthetic_qa"
    train_size: int = Field(2000, ge=1, le=limits.TRAIN_EXAMPLES)
    eval_size: int = Field(500, ge=2, le=limits.EVAL_EXAMPLES)
    n_facts: int = Field(4, ge=1, le=32)
    train_file: Path | None = None
    eval_file: Path | None = None
    max_new_tokens: int = Field(12, ge=1, le=512)


class ValidationSpec(_Strict):
    bootstrap_samples: int | None = Field(None, ge=MIN_RESAMPLES, le=limits.BOOTSTRAP_SAMPLES)
    confidence_level: float = Field(0.95, gt=0.5, lt=1)
    fdr_alpha: float | None = Field(None, gt=0, lt=1)
    metrics: list[str] | None = Field(
        None, min_length=1, description="metrics to test (default: every metric of the task)"
    )


class ConstraintSpec(_Strict):
    budget_tolerance: float | None = Field(None, ge=0, lt=1)
    latency_budget: float | None = Field(None, gt=0)
    vram_budget: float | None = Field(None, gt=0)


class AcceptanceGatesSpec(_Strict):
    min_improvement: float = Field(0.005, description="minimum mean gain, raw metric points")
    statistical_significance: bool = True
    ci_lower_bound_positive: bool = True
    performance_gates_pass: bool = True
    non_inferiority_margin: dict[str, float] = Field(
        default_factory=dict,
        description="metric -> largest tolerated loss (raw metric points): the metric passes "
        "when the BCa lower bound of its mean paired difference lies above -margin",
    )

    @field_validator("non_inferiority_margin")
    @classmethod
    def _margins_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {metric: m for metric, m in value.items() if not m >= 0}
        if bad:
            raise ValueError(f"margins must be >= 0 raw metric points (got {bad})")
        return value


class ExperimentSpec(_Strict):
    experiment_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    variant_type: Literal["performance", "router", "online", "multimodal", "safety"]
    description: str = ""
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = Field(
        None,
        min_length=1,
        max_length=limits.SEEDS,
        description="train baseline and variant once per seed",
    )
    model: ModelSpec = ModelSpec()
    bem_config: BemConfig
    protocol: str | None = Field(
        None,
        description="how the experiment runs (engine.protocols.registry); default: what "
        "its variant needs (A/B arms: 'ab')",
    )
    training: TrainingSpec = TrainingSpec()
    data: DataSpec = DataSpec()
    validation: ValidationSpec = ValidationSpec()
    constraints: ConstraintSpec = ConstraintSpec()
    acceptance_gates: AcceptanceGatesSpec = AcceptanceGatesSpec()

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        return value

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str | None) -> str | None:
        from engine.protocols import registry

        if value is not None and value not in registry.PROTOCOLS:
            raise ValueError(f"unknown protocol {shorten(repr(value))}; known: {registry.known()}")
        return value

    @property
    def protocol_name(self) -> str:
        """The protocol this experiment runs under: its own `protocol`, else its variant's."""
        from engine.variants.registry import get_entry

        return self.protocol or get_entry(self.bem_config.variant).protocol

    @field_validator("bem_config", mode="before")
    @classmethod
    def _known_variant(cls, value: object) -> object:
        if isinstance(value, dict) and value.get("variant") not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise ValueError(
                f"unknown variant {shorten(repr(value.get('variant')))}; known: {known}"
            )
        return value

    @model_validator(mode="after")
    def _task_and_metrics_known(self) -> ExperimentSpec:
        if self.data.task not in TASK_METRICS:
            raise ValueError(
                f"data.task: unknown task {shorten(repr(self.data.task))} "
                f"(known: {', '.join(TASK_NAMES)})"
            )
        known = TASK_METRICS[self.data.task]
        unknown = [m for m in self.validation.metrics or () if m not in known]
        if unknown:
            raise ValueError(
                f"validation.metrics: {shorten(repr(unknown))} are not metrics of task "
                f"{self.data.task!r} (known: {', '.join(known)})"
            )
        return self

    @model_validator(mode="after")
    def _sizes_within_limits(self) -> ExperimentSpec:
        """What the task can generate, what the model's length leaves, what memory allows."""
        data, training = self.data, self.training
        if data.max_new_tokens >= self.model.max_length:
            raise ValueError(
                f"data.max_new_tokens: {data.max_new_tokens} leaves no room for the prompt "
                f"in model.max_length {self.model.max_length} (must be below it)"
            )
        files = [f for f in ("train_file", "eval_file") if getattr(data, f) is not None]
        if data.task in FILE_TASKS:
            missing = [f for f in ("train_file", "eval_file") if f not in files]
            if missing:
                raise ValueError(f"data.{missing[0]}: required by task {data.task!r}")
        elif files:
            readers = " and ".join(repr(t) for t in FILE_TASKS)
            raise ValueError(
                f"data.{files[0]}: only tasks {readers} read data files (task is {data.task!r})"
            )
        if data.task == "synthetic_qa":
            from engine.tasks.qa import distinct_items

            half = distinct_items(data.n_facts) // 2  # each split draws from about half
            for name in ("train_size", "eval_size"):
                if getattr(data, name) > half:
                    raise ValueError(
                        f"data.{name}: {getattr(data, name):,} is more than the ~{half:,} "
                        f"distinct examples synthetic_qa can generate per split with "
                        f"n_facts {data.n_facts}"
                    )
        if data.task == "synthetic_mixed":
            from engine.tasks.mixed import MIN_NEW_TOKENS, fact_range

            allowed = fact_range()
            if data.n_facts not in allowed:
                raise ValueError(
                    f"data.n_facts: synthetic_mixed needs {allowed.start}..{allowed.stop - 1} "
                    f"(prompt + answer must span 2-4 chunks of 64 tokens; got {data.n_facts})"
                )
            if data.max_new_tokens < MIN_NEW_TOKENS:
                raise ValueError(
                    f"data.max_new_tokens: synthetic_mixed needs at least {MIN_NEW_TOKENS} "
                    f"for its JSON answers (got {data.max_new_tokens})"
                )
        if data.task in ("synthetic_safety", "jsonl_safety"):
            from engine.tasks.safety import MIN_NEW_TOKENS as SAFETY_NEW_TOKENS

            if data.task == "synthetic_safety" and data.n_facts < 2:
                raise ValueError(
                    "data.n_facts: synthetic_safety needs at least 2 (one protected and one "
                    f"public fact per context; got {data.n_facts})"
                )
            if data.max_new_tokens < SAFETY_NEW_TOKENS:
                raise ValueError(
                    f"data.max_new_tokens: {data.task} needs at least {SAFETY_NEW_TOKENS} "
                    f"for its refusal (got {data.max_new_tokens})"
                )
        epoch_steps = training.max_epochs * math.ceil(data.train_size / training.batch_size)
        steps = min(epoch_steps, training.max_steps or epoch_steps)
        if steps * training.batch_size > limits.TRAIN_DRAWS:
            raise ValueError(
                f"training: {steps:,} steps x batch_size {training.batch_size} draw "
                f"{steps * training.batch_size:,} examples, more than the limit of "
                f"{limits.TRAIN_DRAWS:,} (lower max_steps, max_epochs or batch_size)"
            )
        margins = self.acceptance_gates.non_inferiority_margin
        untested = [m for m in margins if m not in self.metric_names]
        if untested:
            raise ValueError(
                f"acceptance_gates.non_inferiority_margin: {untested} are not tested metrics "
                f"of this experiment (tested: {', '.join(self.metric_names)})"
            )
        return self

    @property
    def metric_names(self) -> list[str]:
        return list(self.validation.metrics or TASK_METRICS[self.data.task])

    def canonical_json(self) -> str:
        # an unset protocol is left out, so specs written before the field keep their hash
        unset = {"protocol"} if self.protocol is None else set()
        return json.dumps(self.model_dump(mode="json", exclude=unset), sort_keys=True)

    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


class LoadedSpec(BaseModel):
    """A validated spec and where it came from (relative data paths resolve against it)."""

    spec: ExperimentSpec
    path: Path

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.path.parent / path)


def inspect_spec(path: Path) -> tuple[LoadedSpec | None, list[str]]:
    """The spec in `path` and every problem with it (one line each, at most
    `limits.SPEC_PROBLEMS` and a count of the rest); the spec is None unless it parsed.
    The one place the rules are applied: validate, queue, run, list, the console, a worker."""
    try:
        spec = _parse(path)
    except BemctlError as exc:
        return None, [str(exc)]
    except ValidationError as exc:
        return None, _capped(
            path, format_validation_errors(str(path), exc, drop_tags=_VARIANT_TAGS)
        )
    loaded = LoadedSpec(spec=spec, path=path)
    problems = []
    if spec.experiment_name != path.stem:
        problems.append(
            f"{path}: experiment_name: must match the file name {shorten(repr(path.stem))} "
            f"(got {shorten(repr(spec.experiment_name))})"
        )
    from engine.spec_checks import environment_problems

    problems.extend(environment_problems(loaded))
    return loaded, _capped(path, problems)


def _capped(path: Path, lines: list[str]) -> list[str]:
    if len(lines) <= limits.SPEC_PROBLEMS:
        return lines
    rest = len(lines) - limits.SPEC_PROBLEMS
    return [*lines[: limits.SPEC_PROBLEMS], f"{path}: ... and {rest:,} more problems"]


def spec_errors(path: Path) -> list[str]:
    """Every problem in one spec file (all at once, one line each); empty when valid."""
    return inspect_spec(path)[1]


def load_spec(path: Path) -> LoadedSpec:
    """The spec in `path` if it has no problems; else one BemctlError naming them all."""
    loaded, problems = inspect_spec(path)
    if problems or loaded is None:
        raise BemctlError("; ".join(problems))
    return loaded


def _parse(path: Path) -> ExperimentSpec:
    from engine.spec_yaml import load_spec_yaml

    data = load_spec_yaml(path)
    if not isinstance(data, dict):
        raise BemctlError(
            f"{path}: expected a mapping at the top level (got {type(data).__name__})"
        )
    return ExperimentSpec.model_validate(data)


def spec_files(directories: list[Path]) -> dict[str, Path]:
    """Experiment id (file stem) -> path, first directory wins, for name lookup and listings."""
    found: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
            found.setdefault(path.stem, path)
    return found


def find_spec(name: str, directories: list[Path]) -> LoadedSpec:
    """Resolve `bemctl run NAME`: a spec file path, or an id looked up in the experiment dirs.
    Either way the spec passes `load_spec`'s rules (its experiment_name is its file name)."""
    as_path = Path(name)
    if as_path.suffix in {".yml", ".yaml"} and as_path.exists():
        return load_spec(as_path)
    files = spec_files(directories)
    if name not in files:
        valid = ", ".join(sorted(files)) or "(none found)"
        dirs = ", ".join(str(d) for d in directories)
        raise BemctlError(
            f"unknown experiment {shorten(repr(name))} (looked in {dirs}); valid: {valid}"
        )
    return load_spec(files[name])
