"""Fixtures for the console tests: a store filled by one real tiny job, copied per test.

The real job (`bemctl run v1_dynrank --quick` on conftest's tiny project, ~20 s) runs once
per session and each test gets its own copy of the resulting `.bemctl/` directory, so tests
that cancel, retry or enqueue never see each other's writes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

FAST_REFRESH = "\n[tui]\nrefresh_s = 0.2\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


@pytest.fixture
def filled_template(ran_v1_project: Path) -> Path:
    """A project dir in which one real quick job of v1_dynrank has run to its verdict."""
    return ran_v1_project


@pytest.fixture
def fast_project(project: Path) -> Path:
    """conftest's project, with the console re-reading the store every 0.2 s."""
    with (project / "bemctl.toml").open("a") as fh:
        fh.write(FAST_REFRESH)
    return project


@pytest.fixture
def filled_project(fast_project: Path, filled_template: Path) -> Iterator[Path]:
    """fast_project with its own copy of the template's store (and cached base model)."""
    shutil.copytree(filled_template / ".bemctl", fast_project / ".bemctl")
    yield fast_project
