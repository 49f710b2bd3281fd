"""`bemctl doctor`: the environment report, read-only, exit 0 whatever it finds."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from engine.models.base_model import EMBEDDED_NAME, PretrainPlan, cache_key, embedded_config_dict
from engine.settings import load_settings
from store.db import Store
from store.schema import SCHEMA_HEAD


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


def _store_at_revision(project: Path, revision: str) -> Path:
    import sqlite3

    path = load_settings(project / "bemctl.toml").store_path
    Store(path).close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        conn.commit()
    finally:
        conn.close()
    return path


def test_newer_store_is_reported_as_refused_not_upgradable(project: Path, cli) -> None:
    """The store's own rule (store.db.classify_schema), not a guess: a write command does
    not upgrade a schema newer than this bemctl, it refuses it, and so does every reader."""
    path = _store_at_revision(project, "9999")
    fields = _fields(cli("doctor").out)
    assert fields["store"] == (
        f"{path}: schema 9999, head {SCHEMA_HEAD} "
        "(newer than this bemctl: every command refuses it; upgrade bemctl)"
    )
    for command in (("list",), ("queue", "v1_dynrank", "--quick")):
        result = cli(*command)
        assert result.code == 2 and "is newer than this bemctl knows" in result.err


def test_older_store_is_reported_as_upgradable(project: Path, cli) -> None:
    path = _store_at_revision(project, "0005")
    fields = _fields(cli("doctor").out)
    assert fields["store"] == (
        f"{path}: schema 0005, head {SCHEMA_HEAD} "
        "(older than this bemctl: the next write command upgrades it)"
    )


def test_foreign_database_is_reported_as_refused(project: Path, cli) -> None:
    import sqlite3

    path = load_settings(project / "bemctl.toml").store_path
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    fields = _fields(cli("doctor").out)
    assert fields["store"].startswith(f"{path}: not a bemctl store (tables but no schema version)")
