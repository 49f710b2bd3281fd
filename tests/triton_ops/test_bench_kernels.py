"""bench/kernels.py: exits 0 without a GPU, and its measuring code runs (interpreted, tiny)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "kernels.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kernels", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 0
    assert capsys.readouterr().out.strip() == bench.NO_GPU


def test_every_measurement_runs_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU-only script's logic, on the CPU with the interpreter and a one-shot timer."""
    bench = _load()
    monkeypatch.setattr(bench, "DEVICE", "cpu")
    calls = []

    def once(step, grads) -> float:
        start = time.perf_counter()
        step()
        assert all(g.grad is not None for g in grads)
        calls.append(step)
        return 1e3 * (time.perf_counter() - start) + 1e-3

    monkeypatch.setattr(bench, "_time", once)
    rows = (
        bench.bench_masked_lora(9, 16, 4, torch.float32)
        + bench.bench_kron(9, 16, 2, torch.float32)
        + bench.bench_film(9, 16, torch.float32)
    )
    assert len(rows) == 4 and all("eager/triton" in row for row in rows)
    assert len(calls) == 3 + 2 + 2  # masked_lora also times the base GEMM alone
    from triton_ops import dispatch

    assert dispatch.backend() == "auto"  # the script leaves the default behind
