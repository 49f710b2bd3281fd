"""Shared fixtures: a throw-away project (bemctl.toml + experiments/) sized to run in seconds."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The kernel tests run Triton's interpreter in this process. triton keeps state from its
# first import (the interpreter's patching of nested @triton.jit helpers), so it must first be
# imported with TRITON_INTERPRET=1 — before any other test (e.g. `bemctl doctor`, which imports
# triton with the variable unset) does. Harmless elsewhere: under kernels = "auto" CPU tensors
# always take the torch reference (triton_ops.dispatch).
os.environ["TRITON_INTERPRET"] = "1"
try:
    import triton  # noqa: F401
except ImportError:  # not installed (non-Linux): the torch path is all there is
    pass

TINY_TOML = """
store = ".bemctl/bemctl.db"
store_busy_timeout_s = 0.3
experiments_dirs = ["experiments"]
device = "cpu"
torch_threads = 1
seed = 0

[quick]
train_examples = 48
eval_examples = 24
train_steps = 6
batch_size = 8
latency_rounds = 4
bootstrap_samples = 500

[pretrain]
steps = 8
batch_size = 8
learning_rate = 0.002
corpus_docs = 200
"""


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models: intra-op threads only add overhead (and stall badly on a busy CPU)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project dir with a tiny bemctl.toml and copies of the shipped specs; cwd is set to it."""
    (tmp_path / "bemctl.toml").write_text(TINY_TOML)
    shutil.copytree(REPO / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("BEMCTL_")]:
        monkeypatch.delenv(key)
    return tmp_path


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """Run `bemctl ARGS...` in-process through the real entry point; returns code and output."""
    from bemctl.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["bemctl", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def ran_v1_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project in which `bemctl run v1_dynrank --quick` ran once for the session
    (~20 s). Treat it as read-only: copy its `.bemctl/` before writing to it."""
    import os

    from bemctl.cli import main

    root = tmp_path_factory.mktemp("ran_v1_project")
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
            if exc.code:
                pytest.fail(f"bemctl run v1_dynrank --quick exited {exc.code}")
    assert (root / ".bemctl" / "bemctl.db").is_file()
    return root
