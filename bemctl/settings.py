"""bemctl.toml: machine- and project-wide defaults, validated, overridable by BEMCTL_* variables.

Precedence (highest first): command-line flags, the experiment spec, BEMCTL_* environment
variables, bemctl.toml, built-in defaults. Relative paths resolve against the toml's directory
so that a run started from any sub-directory finds the same store.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bemctl.errors import BemctlError, format_validation_errors

CONFIG_NAME = "bemctl.toml"


class QuickSizes(BaseModel):
    """Sizes `--quick` uses instead of the spec's, so a smoke run takes about a minute on a CPU."""

    model_config = ConfigDict(extra="forbid")

    train_examples: int = Field(768, ge=8)
    eval_examples: int = Field(120, ge=2)
    train_steps: int = Field(100, ge=1)
    batch_size: int = Field(16, ge=1)
    latency_rounds: int = Field(40, ge=1)
    bootstrap_samples: int = Field(10_000, ge=100)


class PretrainSizes(BaseModel):
    """How the embedded base model is pre-trained once and cached (part of its cache key)."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(2000, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    corpus_docs: int = Field(20_000, ge=10)


class WorkerSettings(BaseModel):
    """How workers hold jobs: a job whose heartbeat stops for `lease_s` is taken back.

    The lease must outlast a few missed heartbeats (a busy disk, a long store lock), or a
    slow but healthy worker would lose its job to a second one.
    """

    model_config = ConfigDict(extra="forbid")

    heartbeat_s: float = Field(5.0, gt=0, description="seconds between heartbeats")
    lease_s: float = Field(30.0, gt=0, description="a job is lost after this long silent")
    max_attempts: int = Field(3, ge=1, description="tries per job before it fails for good")
    poll_s: float = Field(1.0, gt=0, description="idle worker: look for new work this often")


class TuiSettings(BaseModel):
    """The console: how often it re-reads the store and which keys do what."""

    model_config = ConfigDict(extra="forbid")

    refresh_s: float = Field(1.0, gt=0, description="seconds between store reads")
    keys: dict[str, str] = Field(
        default_factory=dict, description="action -> key, e.g. cancel = \"x\""
    )


class Settings(BaseSettings):
    """Validated contents of bemctl.toml; unknown keys are errors, not silently ignored."""

    model_config = SettingsConfigDict(
        env_prefix="BEMCTL_", env_nested_delimiter="__", extra="forbid"
    )

    store: Path = Path(".bemctl/bemctl.db")
    store_busy_timeout_s: float = Field(5.0, ge=0, description="wait this long for a locked store")
    experiments_dirs: list[Path] = [Path("experiments")]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    kernels: Literal["auto", "triton", "torch"] = Field(
        "auto", description="adapter ops: Triton kernels on CUDA (auto), always, or never"
    )
    torch_threads: int = Field(0, ge=0, description="CPU intra-op threads; 0 = torch's default")
    seed: int = 0
    bootstrap_samples: int = Field(10_000, ge=100)
    fdr_alpha: float = Field(0.05, gt=0, lt=1)
    budget_tolerance: float = Field(0.05, ge=0, lt=1)
    latency_budget: float = Field(1.15, gt=0)
    memory_budget: float = Field(1.05, gt=0)
    target_power: float = Field(0.8, gt=0, lt=1)
    quick: QuickSizes = QuickSizes()
    pretrain: PretrainSizes = PretrainSizes()
    worker: WorkerSettings = WorkerSettings()
    tui: TuiSettings = TuiSettings()

    # Set by load_settings, not by the file: where relative paths are anchored.
    base_dir: Path = Field(default=Path("."), exclude=True)
    config_path: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file: the file's values arrive through init_settings' defaults
        # below, so we order env first and pass file data as the lowest-priority init source.
        return (env_settings, init_settings)

    @property
    def store_path(self) -> Path:
        return _anchor(self.store, self.base_dir)

    @property
    def experiment_paths(self) -> list[Path]:
        return [_anchor(p, self.base_dir) for p in self.experiments_dirs]

    @property
    def cache_dir(self) -> Path:
        """Model cache lives beside the store so deleting `.bemctl/` resets everything."""
        return self.store_path.parent / "models"


def _anchor(path: Path, base: Path) -> Path:
    path = Path(os.path.expanduser(path))
    return path if path.is_absolute() else (base / path)


def find_config(start: Path | None = None) -> Path | None:
    """The nearest bemctl.toml at or above `start`, as git finds .git: runs work from sub-dirs."""
    env = os.environ.get("BEMCTL_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise BemctlError(f"BEMCTL_CONFIG={env}: file not found")
        return path
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BemctlError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise BemctlError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None


def settings_errors(path: Path) -> list[str]:
    """All validation problems of one bemctl.toml, for `bemctl validate`."""
    try:
        _build(read_toml(path), path.parent.resolve())
    except BemctlError as exc:
        return [str(exc)]
    except ValidationError as exc:
        return format_validation_errors(str(path), exc)
    return []


def load_settings(config: Path | None = None) -> Settings:
    """Settings from `config`, else the nearest bemctl.toml, else defaults anchored at the cwd."""
    path = config if config is not None else find_config()
    data: dict[str, Any] = {}
    base = Path.cwd().resolve()
    source = "defaults"
    if path is not None:
        data = read_toml(path)
        base = path.parent.resolve()
        source = str(path)
    try:
        settings = _build(data, base)
        settings.config_path = path.resolve() if path is not None else None
        return settings
    except ValidationError as exc:
        lines = []
        for line, error in zip(format_validation_errors(source, exc), exc.errors(), strict=True):
            env_name = "BEMCTL_" + "__".join(str(p) for p in error["loc"]).upper()
            if env_name in os.environ:  # blame the variable, not the file
                line = f"{env_name}: " + line.split(": ", 1)[1]
            lines.append(line)
        raise BemctlError("; ".join(lines)) from None


def _build(data: dict[str, Any], base: Path) -> Settings:
    data = dict(data)
    for internal in ("base_dir", "config_path"):  # not user-settable: let extra=forbid reject
        if internal in data:
            data[f"{internal}!"] = data.pop(internal)
    return Settings(**data, base_dir=base)
