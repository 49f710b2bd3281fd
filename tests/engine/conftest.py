"""Fixtures for engine tests that run whole jobs."""

from __future__ import annotations

import pytest

from engine.evaluation.measure import MemoryReading


@pytest.fixture
def no_memory_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the fresh-process memory probes (two Python processes that import torch and load
    the base, ~30 s each on a busy CPU) in tests that check nothing about memory."""
    monkeypatch.setattr(
        "engine.runner.probe_memory",
        lambda requests, cwd: [MemoryReading(1_000_000, "cpu_peak_rss") for _ in requests],
    )
