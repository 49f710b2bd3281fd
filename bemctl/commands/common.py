"""What the commands share: the global --config, opening the settings and the store, the
run options and their validation, and the argument/option types several commands take.

Heavy modules (torch, the engine's runner, the store's database layer) are imported inside
the functions, so `bemctl --help` and the light commands start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.limits import BOOTSTRAP_SAMPLES
from engine.settings import MAX_SEED
from engine.stats import MIN_RESAMPLES
from store.errors import BemctlError

if TYPE_CHECKING:
    from engine.plan import RunOptions
    from engine.settings import Settings
    from store.db import Store

# Ids, priorities and limits end up as SQLite INTEGERs: signed 64-bit.
SQLITE_INT_MAX = 2**63 - 1

_state: dict[str, Path | None] = {"config": None}


def set_config_path(config: Path | None) -> None:
    """Remember the global --config for the command that follows."""
    _state["config"] = config


def config_path() -> Path | None:
    """The global --config, if one was given."""
    return _state["config"]


def get_settings() -> Settings:
    """bemctl.toml as --config names it, or the nearest one (see engine.settings)."""
    from engine.settings import load_settings

    return load_settings(_state["config"])


def open_store(settings: Settings, readonly: bool = False) -> Store:
    """The project's store (readonly for the commands that only look)."""
    from store.db import Store

    return Store(
        settings.store_path, readonly=readonly, busy_timeout_s=settings.store_busy_timeout_s
    )


def run_options(
    quick: bool,
    seed: int | None,
    bootstrap_samples: int | None,
    fdr_alpha: float | None,
    statistical_power: float | None,
    budget_tolerance: float | None,
) -> RunOptions:
    """The options of `run` and `queue`, refused with one line when out of range."""
    from engine.plan import RunOptions

    if fdr_alpha is not None and not 0 < fdr_alpha < 1:
        raise BemctlError(f"--fdr-alpha: must be between 0 and 1, exclusive (got {fdr_alpha})")
    if statistical_power is not None and not 0 < statistical_power < 1:
        raise BemctlError(
            f"--statistical-power: must be between 0 and 1, exclusive (got {statistical_power})"
        )
    if budget_tolerance is not None and not 0 <= budget_tolerance < 1:
        raise BemctlError(f"--budget-tolerance: must be in [0, 1) (got {budget_tolerance})")
    return RunOptions(
        quick=quick,
        seed=seed,
        bootstrap_samples=bootstrap_samples,
        fdr_alpha=fdr_alpha,
        budget_tolerance=budget_tolerance,
        target_power=statistical_power,
    )


def check_specs(experiments: list[str], settings: Settings) -> None:
    """Refuse bad specs before the store is opened (or created): bad input leaves nothing
    behind. `enqueue_experiments` applies the same rules again as it queues."""
    from engine.runner import resolve_specs

    resolve_specs(experiments, settings)


ExperimentsArg = Annotated[list[str], typer.Argument(help="experiment ids or spec files")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="small sizes from bemctl.toml [quick]")]
SeedOpt = Annotated[
    int | None,
    typer.Option(min=0, max=MAX_SEED, help=f"seed for data, init and bootstrap (0..{MAX_SEED})"),
]
BootstrapOpt = Annotated[
    int | None, typer.Option(min=MIN_RESAMPLES, max=BOOTSTRAP_SAMPLES, help="BCa resamples")
]
FdrOpt = Annotated[float | None, typer.Option(help="BH-FDR level, in (0, 1)")]
PowerOpt = Annotated[
    float | None,
    typer.Option(help="target power, in (0, 1): report the n each metric would need"),
]
BudgetOpt = Annotated[float | None, typer.Option(help="param/FLOP parity ±, in [0, 1)")]
PriorityOpt = Annotated[
    int,
    typer.Option(min=-SQLITE_INT_MAX, max=SQLITE_INT_MAX, help="higher runs first (default 0)"),
]
RunIdArg = Annotated[
    int, typer.Argument(min=1, max=SQLITE_INT_MAX, help="run id from `bemctl list`")
]
