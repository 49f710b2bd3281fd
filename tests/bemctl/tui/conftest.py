"""Fixtures for the console tests: a store filled by one real tiny job, copied per test.

The real job (`bemctl run v1_dynrank --quick` on conftest's tiny project, ~20 s) runs once
per session and each test gets its own copy of the resulting `.bemctl/` directory, so tests
that cancel, retry or enqueue never see each other's writes.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TOML

FAST_REFRESH = "\n[tui]\nrefresh_s = 0.2\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


@pytest.fixture(scope="session")
def filled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project dir in which one real quick job of v1_dynrank has run to its verdict."""
    from bemctl.cli import main

    root = tmp_path_factory.mktemp("tui-template")
    (root / "bemctl.toml").write_text(TINY_TOML)
    shutil.copytree(REPO / "experiments", root / "experiments")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for key in [k for k in os.environ if k.startswith("BEMCTL_")]:
            mp.delenv(key)
        mp.setattr(sys, "argv", ["bemctl", "run", "v1_dynrank", "--quick"])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, f"template run failed with exit code {exc.code}"
    assert (root / ".bemctl" / "bemctl.db").is_file()
    return root


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
