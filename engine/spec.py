"""Experiment specs: one YAML per experiment, validated strictly before anything trains.

The structure follows the user guide (`experiment_name`, `variant_type`, `model`,
`bem_config`, `training`, `validation`, `constraints`, `acceptance_gates`) plus `data`, which
says which task the comparison runs on. Optional numbers left out (None) fall back to
bemctl.toml, so one file sets the lab's defaults and a spec only states what it changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bemctl.errors import BemctlError, format_validation_errors
from engine.tasks.registry import TASK_METRICS, TASK_NAMES
from engine.variants.registry import REGISTRY

EMBEDDED_MODEL = "embedded:tiny-gpt2"

BemConfig = Annotated[
    Union[tuple(entry.config_cls for entry in REGISTRY.values())],  # noqa: UP007
    Field(discriminator="variant"),
]
_VARIANT_TAGS = frozenset(REGISTRY)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    base_model: str = Field(
        EMBEDDED_MODEL,
        description="'embedded:tiny-gpt2' or a local Hugging Face model directory",
    )
    max_length: int = Field(256, ge=16, le=8192)


class TrainingSpec(_Strict):
    learning_rate: float = Field(5e-4, gt=0, le=1)
    batch_size: int = Field(16, ge=1)
    max_epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="cap on optimiser steps")
    warmup_steps: int = Field(0, ge=0)
    gradient_clip: float = Field(1.0, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class DataSpec(_Strict):
    task: str = "synthetic_qa"
    train_size: int = Field(2000, ge=1)
    eval_size: int = Field(500, ge=2)
    n_facts: int = Field(4, ge=1, le=32)
    train_file: Path | None = None
    eval_file: Path | None = None
    max_new_tokens: int = Field(12, ge=1, le=512)


class ValidationSpec(_Strict):
    bootstrap_samples: int | None = Field(None, ge=100)
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
    seeds: list[int] | None = Field(
        None, min_length=1, description="train baseline and variant once per seed"
    )
    model: ModelSpec = ModelSpec()
    bem_config: BemConfig
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

    @field_validator("bem_config", mode="before")
    @classmethod
    def _known_variant(cls, value: object) -> object:
        if isinstance(value, dict) and value.get("variant") not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise ValueError(f"unknown variant {value.get('variant')!r}; known: {known}")
        return value

    @model_validator(mode="after")
    def _task_and_metrics_known(self) -> ExperimentSpec:
        if self.data.task not in TASK_METRICS:
            raise ValueError(
                f"data.task: unknown task {self.data.task!r} (known: {', '.join(TASK_NAMES)})"
            )
        known = TASK_METRICS[self.data.task]
        unknown = [m for m in self.validation.metrics or () if m not in known]
        if unknown:
            raise ValueError(
                f"validation.metrics: {unknown} are not metrics of task {self.data.task!r} "
                f"(known: {', '.join(known)})"
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
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


class LoadedSpec(BaseModel):
    """A validated spec and where it came from (relative data paths resolve against it)."""

    spec: ExperimentSpec
    path: Path

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.path.parent / path)


def spec_errors(path: Path) -> list[str]:
    """Every problem in one spec file (all at once, one line each); empty when valid."""
    try:
        _parse(path)
    except BemctlError as exc:
        return [str(exc)]
    except ValidationError as exc:
        return format_validation_errors(str(path), exc, drop_tags=_VARIANT_TAGS)
    return []


def load_spec(path: Path) -> LoadedSpec:
    try:
        return LoadedSpec(spec=_parse(path), path=path)
    except ValidationError as exc:
        lines = format_validation_errors(str(path), exc, drop_tags=_VARIANT_TAGS)
        raise BemctlError("; ".join(lines)) from None


def _parse(path: Path) -> ExperimentSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BemctlError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BemctlError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BemctlError(f"{path}: {where}invalid YAML: {problem}") from None
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
    """Resolve `bemctl run NAME`: a spec file path, or an id looked up in the experiment dirs."""
    as_path = Path(name)
    if as_path.suffix in {".yml", ".yaml"} and as_path.exists():
        return load_spec(as_path)
    files = spec_files(directories)
    if name not in files:
        valid = ", ".join(sorted(files)) or "(none found)"
        dirs = ", ".join(str(d) for d in directories)
        raise BemctlError(f"unknown experiment {name!r} (looked in {dirs}); valid: {valid}")
    loaded = load_spec(files[name])
    if loaded.spec.experiment_name != name:
        raise BemctlError(
            f"{files[name]}: experiment_name: must match the file name {name!r} "
            f"(got {loaded.spec.experiment_name!r})"
        )
    return loaded
