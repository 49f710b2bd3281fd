"""`bemctl doctor`: the environment report, read-only, exit 0 whatever it finds."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from bemctl.settings import load_settings
from engine.models.base_model import EMBEDDED_NAME, PretrainPlan, cache_key, embedded_config_dict
from store.db import SCHEMA_HEAD, Store


def _fields(text: str) -> dict[str, str]:
    """'name   value' lines -> {name: value} (names are the first 17 columns)."""
    return {line[:17].strip(): line[17:].strip() for line in text.splitlines() if line.strip()}


@pytest.fixture(autouse=True)
def _no_gpu_no_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def test_fresh_project_reports_everything_and_touches_nothing(project: Path, cli) -> None:
    result = cli("doctor")
    assert result.code == 0, result.err
    fields = _fields(result.out)
    assert fields["python"].startswith(platform.python_version())
    assert fields["torch"] == torch.__version__
    assert fields["cuda available"] == "no"
    assert fields["triton"]  # a version here (installed), "not installed" elsewhere
    assert fields["kernels"].startswith("auto: torch (reference ops) because ")
    assert fields["nvml available"].startswith(("yes", "no"))
    assert fields["store"].endswith("none yet (the first run creates it)")
    assert "not cached (next run pre-trains it)" in fields["base-model cache"]
    assert not (project / ".bemctl").exists()  # doctor creates neither store nor cache


def test_existing_store_and_cached_base_model(project: Path, cli) -> None:
    settings = load_settings(project / "bemctl.toml")
    Store(settings.store_path).close()
    p = settings.pretrain
    plan = PretrainPlan(p.steps, p.batch_size, p.learning_rate, p.corpus_docs)
    entry = settings.cache_dir / f"{EMBEDDED_NAME}-{cache_key(embedded_config_dict(), plan)}"
    entry.mkdir(parents=True)
    (entry / "model.safetensors").write_bytes(b"")
    fields = _fields(cli("doctor").out)
    assert fields["store"].endswith(f"schema {SCHEMA_HEAD}, head {SCHEMA_HEAD} (up to date)")
    assert fields["base-model cache"].endswith(f"{entry.name} cached")


def test_kernels_setting_and_interpreter_change_the_reported_path(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = project / "bemctl.toml"
    toml.write_text('kernels = "triton"\n' + toml.read_text())
    result = cli("doctor")
    assert result.code == 0
    assert _fields(result.out)["kernels"].startswith("triton: cannot run here (no CUDA device")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _fields(cli("doctor").out)["kernels"].startswith("triton: interpreted")
    monkeypatch.setenv("BEMCTL_KERNELS", "torch")
    assert _fields(cli("doctor").out)["kernels"] == "torch: torch (reference ops)"
