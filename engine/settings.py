"""bemctl.toml: machine- and project-wide defaults, validated, overridable by BEMCTL_* variables.

Precedence (highest first): command-line flags, the experiment spec, BEMCTL_* environment
variables, bemctl.toml, built-in defaults. Relative paths resolve against the toml's directory
so that a run started from any sub-directory finds the same store.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from engine import limits
from engine.numbers import not_a_bool
from engine.stats import MIN_RESAMPLES
from store.errors import BemctlError, format_validation_errors, shorten

CONFIG_NAME = "bemctl.toml"
ENV_PREFIX = "BEMCTL_"

# Seeds go to numpy's default_rng, torch.manual_seed / torch.Generator, Python's random and
# the store's signed 64-bit INTEGER column, and the engine derives seeds from them (seed + k).
# 2**32 - 1 is accepted by all of those (it is also the limit of numpy's legacy seeding) and
# leaves derived seeds far inside SQLite's range.
MAX_SEED = 2**32 - 1

# A lease must outlive this many heartbeat intervals, so a worker that misses two heartbeats
# (a slow disk, a long store lock) still holds its job when the third arrives.
LEASE_HEARTBEATS = 3

# Set by load_settings from where bemctl.toml is; never read from the file or the environment
# (a BEMCTL_BASE_DIR would silently move the store).
INTERNAL_FIELDS = ("base_dir", "config_path")


# Numbers in bemctl.toml: never booleans (TOML `true` is a bool, and pydantic would take it
# as 1; the same rule as specs, `engine.numbers`); ints stay accepted where a float is
# expected, and strings too, since BEMCTL_* environment variables are strings.
Int = Annotated[int, BeforeValidator(not_a_bool)]
Float = Annotated[float, BeforeValidator(not_a_bool)]


class QuickSizes(BaseModel):
    """Sizes `--quick` uses instead of the spec's, so a smoke run takes about a minute on a CPU.

    Bounded like a spec's sizes (`engine.limits`): what memory allows."""

    model_config = ConfigDict(extra="forbid")

    train_examples: Int = Field(768, ge=8, le=limits.TRAIN_EXAMPLES)
    eval_examples: Int = Field(120, ge=2, le=limits.EVAL_EXAMPLES)
    train_steps: Int = Field(100, ge=1, le=limits.TRAIN_STEPS)
    batch_size: Int = Field(16, ge=1, le=limits.BATCH_SIZE)
    latency_rounds: Int = Field(40, ge=1, le=limits.LATENCY_ROUNDS)
    bootstrap_samples: Int = Field(10_000, ge=MIN_RESAMPLES, le=limits.BOOTSTRAP_SAMPLES)


class PretrainSizes(BaseModel):
    """How the embedded base model is pre-trained once and cached (part of its cache key)."""

    model_config = ConfigDict(extra="forbid")

    steps: Int = Field(2000, ge=1, le=limits.TRAIN_STEPS)
    batch_size: Int = Field(16, ge=1, le=limits.BATCH_SIZE)
    learning_rate: Float = Field(3e-3, gt=0)
    corpus_docs: Int = Field(20_000, ge=10, le=limits.PRETRAIN_CORPUS_DOCS)


class WorkerSettings(BaseModel):
    """How workers hold jobs: a job whose heartbeat stops for `lease_s` is taken back.

    The lease must outlast a few missed heartbeats (a busy disk, a long store lock), or a
    slow but healthy worker would lose its job to a second one: `Settings` requires
    lease_s >= LEASE_HEARTBEATS x heartbeat_s.
    """

    model_config = ConfigDict(extra="forbid")

    heartbeat_s: Float = Field(5.0, gt=0, description="seconds between heartbeats")
    lease_s: Float = Field(30.0, gt=0, description="a job is lost after this long silent")
    max_attempts: Int = Field(3, ge=1, description="tries per job before it fails for good")
    poll_s: Float = Field(1.0, gt=0, description="idle worker: look for new work this often")


# `[tui.keys]` is checked against the console's key table, which lives with the console
# (bemctl.tui.keys); bemctl registers that check here when it is imported, so every entry point
# that loads bemctl.toml (validate, the CLI, the console) applies the same rule.
KEY_CHECKS: list[Callable[[dict[str, str]], None]] = []


class MeasureSettings(BaseModel):
    """How the cost measurements probe both arms: part of a job's frozen plan, so a retry
    measures exactly as its first attempt did. `--quick` takes `[quick] latency_rounds`."""

    model_config = ConfigDict(extra="forbid")

    latency_rounds: Int = Field(
        100, ge=1, le=limits.LATENCY_ROUNDS, description="planned interleaved latency rounds"
    )
    new_tokens: Int = Field(
        16, ge=1, le=limits.MEASURE_NEW_TOKENS, description="decode steps per latency probe"
    )
    probe_prompts: Int = Field(
        16, ge=1, le=limits.EVAL_EXAMPLES, description="eval prompts the latency and KV probes use"
    )
    memory_prompts: Int = Field(
        8, ge=1, le=limits.EVAL_EXAMPLES, description="generations per arm in the memory probe"
    )


class TuiSettings(BaseModel):
    """The console: how often it re-reads the store and which keys do what."""

    model_config = ConfigDict(extra="forbid")

    refresh_s: Float = Field(1.0, gt=0, description="seconds between store reads")
    keys: dict[str, str] = Field(
        default_factory=dict, description='action -> key, e.g. cancel = "x"'
    )


class Settings(BaseSettings):
    """Validated contents of bemctl.toml; unknown keys are errors, not silently ignored.

    Rules that involve several keys live here too (lease vs heartbeat, console key
    bindings), so load_settings, `bemctl validate` and the console refuse the same files.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    store: Path = Path(".bemctl/bemctl.db")
    store_busy_timeout_s: Float = Field(5.0, ge=0, description="wait this long for a locked store")
    experiments_dirs: list[Path] = [Path("experiments")]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    kernels: Literal["auto", "triton", "torch"] = Field(
        "auto", description="adapter ops: Triton kernels on CUDA (auto), always, or never"
    )
    torch_threads: Int = Field(0, ge=0, description="CPU intra-op threads; 0 = torch's default")
    seed: Int = Field(0, ge=0, le=MAX_SEED)
    bootstrap_samples: Int = Field(10_000, ge=MIN_RESAMPLES, le=limits.BOOTSTRAP_SAMPLES)
    fdr_alpha: Float = Field(0.05, gt=0, lt=1)
    budget_tolerance: Float = Field(0.05, ge=0, lt=1)
    latency_budget: Float = Field(1.15, gt=0)
    memory_budget: Float = Field(1.05, gt=0)
    target_power: Float = Field(0.8, gt=0, lt=1)
    quick: QuickSizes = QuickSizes()
    pretrain: PretrainSizes = PretrainSizes()
    measure: MeasureSettings = MeasureSettings()
    worker: WorkerSettings = WorkerSettings()
    tui: TuiSettings = TuiSettings()

    # Set by load_settings, not by the file or the environment: where relative paths are
    # anchored (see INTERNAL_FIELDS).
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
        return (_UserEnvironment(settings_cls, env_settings), init_settings)

    @model_validator(mode="after")
    def _rules_across_keys(self) -> Settings:
        """Messages start with the dotted key they are about: the error line names it."""
        q = self.quick
        if q.train_steps * q.batch_size > limits.TRAIN_DRAWS:
            raise ValueError(
                f"quick.train_steps: {q.train_steps:,} steps x quick.batch_size {q.batch_size} "
                f"draw {q.train_steps * q.batch_size:,} examples, more than the limit of "
                f"{limits.TRAIN_DRAWS:,}"
            )
        w = self.worker
        if w.lease_s < LEASE_HEARTBEATS * w.heartbeat_s:
            raise ValueError(
                f"worker.lease_s: must be at least {LEASE_HEARTBEATS} x worker.heartbeat_s "
                f"(= {LEASE_HEARTBEATS * w.heartbeat_s:g} s), so a job survives "
                f"{LEASE_HEARTBEATS - 1} missed heartbeats (got {w.lease_s:g})"
            )
        if self.tui.keys:
            for check in KEY_CHECKS:
                try:
                    check(self.tui.keys)
                except BemctlError as exc:
                    raise ValueError(str(exc)) from None
        return self

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


class _UserEnvironment(PydanticBaseSettingsSource):
    """The BEMCTL_* variables minus the internal fields (a user setting one gets an error
    from `_check_environment` first; this keeps them out even of a direct Settings())."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ does the work

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._env().items() if k not in INTERNAL_FIELDS}


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
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        byte = exc.object[exc.start]
        raise BemctlError(
            f"{path}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None


def settings_errors(path: Path) -> list[str]:
    """All validation problems of one bemctl.toml, for `bemctl validate`."""
    try:
        _build(read_toml(path), path.parent.resolve(), str(path))
    except BemctlError as exc:
        return [str(exc)]
    except ValidationError as exc:
        return _blame(str(path), exc)
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
        settings = _build(data, base, source)
    except ValidationError as exc:
        raise BemctlError("; ".join(_blame(source, exc))) from None
    settings.config_path = path.resolve() if path is not None else None
    return settings


def _build(data: dict[str, Any], base: Path, source: str) -> Settings:
    for internal in INTERNAL_FIELDS:  # the file cannot move the store's anchor either
        if internal in data:
            raise BemctlError(f"{source}: {internal}: unknown field (got {data[internal]!r})")
    _check_environment()
    try:
        return Settings(**data, base_dir=base)
    except SettingsError as exc:  # a JSON shape _check_environment did not foresee
        raise BemctlError(f"environment: {exc}") from None


# -- the environment ----------------------------------------------------------------------


def _environment() -> dict[str, tuple[str, str]]:
    """BEMCTL_* variables, as pydantic-settings matches them (case-insensitively):
    lower-cased name -> (name as set, value)."""
    prefix = ENV_PREFIX.lower()
    return {
        name.lower(): (name, value)
        for name, value in os.environ.items()
        if name.lower().startswith(prefix)
    }


def _json_fields(model: type[BaseModel], prefix: str = ENV_PREFIX.lower()) -> dict[str, str]:
    """Environment names whose value pydantic-settings parses as JSON -> what is expected.

    Lists, dicts and sub-tables can only be given as JSON in one variable (or, for
    sub-tables, key by key with `__`)."""
    found: dict[str, str] = {}
    for name, field in model.model_fields.items():
        if name in INTERNAL_FIELDS:
            continue
        env = f"{prefix}{name}"
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys = ", ".join(f'"{k}"' for k in list(annotation.model_fields)[:2])
            found[env] = f"a JSON object with keys such as {keys}"
            found.update(_json_fields(annotation, env + "__"))
        elif origin is list:
            found[env] = 'a JSON list, e.g. ["experiments", "more_experiments"]'
        elif origin is dict:
            found[env] = 'a JSON object, e.g. {"cancel": "k"}'
    return found


def _check_environment() -> None:
    """One line naming the variable for what pydantic-settings would turn into a traceback
    (invalid JSON) or silently obey (an internal field)."""
    env = _environment()
    for internal in INTERNAL_FIELDS:
        key = f"{ENV_PREFIX}{internal}".lower()
        if key in env:
            raise BemctlError(
                f"{env[key][0]}: not a setting: bemctl derives {internal} from where "
                "bemctl.toml is; unset it (to choose the bemctl.toml, use BEMCTL_CONFIG "
                "or --config)"
            )
    for key, expected in _json_fields(Settings).items():
        if key not in env:
            continue
        name, value = env[key]
        try:
            json.loads(value)
        except ValueError:
            raise BemctlError(f"{name}: expected {expected} (got {shorten(repr(value))})") from None


_DOTTED = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*): ")


def _blame(source: str, exc: ValidationError) -> list[str]:
    """format_validation_errors' lines, each naming the environment variable its value
    came from instead of `source` when one did."""
    env = _environment()
    lines = []
    for line, error in zip(format_validation_errors(source, exc), exc.errors(), strict=True):
        loc = tuple(error["loc"])
        if not loc:  # a rule across keys: its message starts with the key it is about
            match = _DOTTED.match(error["msg"].removeprefix("Value error, "))
            loc = tuple(match.group(1).split(".")) if match else ()
        variable = _variable_for(loc, env)
        if variable is not None:
            line = f"{variable}: " + line[len(source) + 2 :]
        lines.append(line)
    return lines


def _variable_for(loc: tuple[Any, ...], env: dict[str, tuple[str, str]]) -> str | None:
    """The BEMCTL_* variable that supplied the value at `loc`, if any.

    The longest matching name wins (BEMCTL_WORKER__LEASE_S before BEMCTL_WORKER); a JSON
    variable only counts if its value contains the rest of the path, since the file may
    have supplied that part of the table.
    """
    for cut in range(len(loc), 0, -1):
        key = (ENV_PREFIX + "__".join(str(p) for p in loc[:cut])).lower()
        if key not in env:
            continue
        name, value = env[key]
        if cut == len(loc):
            return name
        try:
            node: Any = json.loads(value)
            for part in loc[cut:]:
                node = node[part]
        except (ValueError, LookupError, TypeError):
            continue
        return name
    return None
