"""Registers the `slow` marker: Monte Carlo checks that take seconds (they still run in CI)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: multi-second Monte Carlo check (still runs in CI; deselect with -m)"
    )
