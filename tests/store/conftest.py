"""Shared fixtures: a fresh store per test, and a way to seed an experiment with runs."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store import queries
from store.db import Store
from store.models import Experiment, Run


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    # A nested path checks that the parent directory is created on demand.
    return tmp_path / "state" / "bemctl.db"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    with Store(store_path) as opened:
        yield opened


Seed = Callable[..., tuple[Experiment, Run, Run]]


def _seed_runs(store: Store, name: str = "rank8") -> tuple[Experiment, Run, Run]:
    """An experiment with one baseline and one variant run."""
    experiment = queries.get_or_create_experiment(
        store, name, '{"rank": 8}', f"hash-{name}", f"experiments/{name}.yaml"
    )
    assert experiment.id is not None
    runs = [
        queries.create_run(
            store,
            experiment_id=experiment.id,
            invocation_id="inv-1",
            role=role,
            seed=0,
            quick=True,
            device="cpu",
            total_steps=10,
        )
        for role in ("baseline", "variant")
    ]
    return experiment, runs[0], runs[1]


@pytest.fixture
def seed(store: Store) -> Seed:
    """`seed(name=...)` -> (experiment, baseline run, variant run) in the test's store."""
    return lambda name="rank8": _seed_runs(store, name)
