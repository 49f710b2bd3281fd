"""bemctl.toml loading: defaults, validation (all errors at once), env overrides, path anchoring."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from bemctl.errors import BemctlError
from bemctl.settings import (
    CONFIG_NAME,
    PretrainSizes,
    QuickSizes,
    Settings,
    find_config,
    load_settings,
    settings_errors,
)

SHIPPED = Path(__file__).resolve().parents[2] / CONFIG_NAME


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No BEMCTL_* variable from the caller's shell, and a cwd without a bemctl.toml."""
    for name in list(os.environ):
        if name.startswith("BEMCTL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _toml(directory: Path, text: str, name: str = CONFIG_NAME) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_toml(tmp_path: Path) -> None:
    assert find_config(tmp_path) is None
    s = load_settings()
    assert s.seed == 0
    assert s.device == "auto"
    assert s.bootstrap_samples == 10_000
    assert s.fdr_alpha == 0.05
    assert s.budget_tolerance == 0.05
    assert s.latency_budget == 1.15
    assert s.memory_budget == 1.05
    assert s.quick == QuickSizes()
    assert s.pretrain == PretrainSizes()
    assert s.base_dir == tmp_path.resolve()
    assert s.store_path == tmp_path.resolve() / ".bemctl" / "bemctl.db"
    assert s.experiment_paths == [tmp_path.resolve() / "experiments"]
    assert s.cache_dir == tmp_path.resolve() / ".bemctl" / "models"


def test_shipped_toml_is_valid() -> None:
    assert settings_errors(SHIPPED) == []
    s = load_settings(SHIPPED)
    assert s.base_dir == SHIPPED.parent.resolve()


def test_load_settings_from_toml(tmp_path: Path) -> None:
    path = _toml(
        tmp_path / "proj",
        """
seed = 7
device = "cpu"
fdr_alpha = 0.1
experiments_dirs = ["specs", "/abs/more"]

[quick]
eval_examples = 50

[pretrain]
steps = 10
""",
    )
    s = load_settings(path)
    assert s.seed == 7
    assert s.device == "cpu"
    assert s.fdr_alpha == 0.1
    assert s.quick.eval_examples == 50
    assert s.quick.train_examples == QuickSizes().train_examples  # untouched default
    assert s.pretrain.steps == 10
    assert s.experiment_paths == [tmp_path.resolve() / "proj" / "specs", Path("/abs/more")]


def test_nearest_toml_is_found_from_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path / "proj", "seed = 11\n")
    (tmp_path / "proj" / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "proj" / "a" / "b")
    assert find_config() == path
    assert load_settings().seed == 11


def test_bemctl_config_env_points_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path / "elsewhere", "seed = 12\n", name="custom.toml")
    monkeypatch.setenv("BEMCTL_CONFIG", str(path))
    assert load_settings().seed == 12
    monkeypatch.setenv("BEMCTL_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(BemctlError, match="BEMCTL_CONFIG=.*missing.toml: file not found"):
        load_settings()


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'seed = 1\ncolour = "red"\n')
    with pytest.raises(BemctlError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: colour: unknown field (got 'red')"


def test_unknown_nested_key(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[quick]\ntrain_steps = 5\nepochs = 2\n")
    assert settings_errors(path) == [f"{path}: quick.epochs: unknown field (got 2)"]


def test_base_dir_is_not_user_settable(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'base_dir = "/somewhere"\n')
    errors = settings_errors(path)
    assert len(errors) == 1
    assert "unknown field" in errors[0] and "/somewhere" in errors[0]


def test_env_seed_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(tmp_path, "seed = 5\nfdr_alpha = 0.1\n")
    monkeypatch.setenv("BEMCTL_SEED", "42")
    s = load_settings()
    assert s.seed == 42
    assert s.fdr_alpha == 0.1  # the file still supplies everything else


def test_env_overrides_defaults_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEMCTL_DEVICE", "cpu")
    assert load_settings().device == "cpu"


def test_nested_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(tmp_path, "[quick]\ntrain_examples = 500\neval_examples = 100\n")
    monkeypatch.setenv("BEMCTL_QUICK__EVAL_EXAMPLES", "33")
    s = load_settings()
    assert s.quick.eval_examples == 33
    assert s.quick.train_examples == 500  # merged with the file's [quick], not replacing it
    assert s.quick.train_steps == QuickSizes().train_steps


def test_invalid_env_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEMCTL_SEED", "many")
    with pytest.raises(BemctlError, match=r"seed: .*integer.* \(got 'many'\)"):
        load_settings()


def test_relative_store_anchored_at_toml_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path / "proj", 'store = "data/runs.db"\n')
    (tmp_path / "proj" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    for s in (load_settings(), load_settings(Path("../bemctl.toml"))):
        assert s.store_path == path.parent.resolve() / "data" / "runs.db"
        assert s.cache_dir == path.parent.resolve() / "data" / "models"


def test_absolute_store_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "x.db"
    path = _toml(tmp_path / "proj", f'store = "{target}"\n')
    assert load_settings(path).store_path == target


def test_settings_errors_lists_every_problem(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
seed = "abc"
fdr_alpha = 2
device = "tpu"
colour = "red"

[quick]
eval_examples = 1
""",
    )
    errors = settings_errors(path)
    assert len(errors) == 5, errors
    assert all(line.startswith(f"{path}: ") for line in errors)
    fields = {line.split(": ")[1] for line in errors}
    assert fields == {"seed", "fdr_alpha", "device", "colour", "quick.eval_examples"}
    with pytest.raises(BemctlError) as info:
        load_settings(path)
    assert str(info.value) == "; ".join(errors)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "seed = = 3\n")
    errors = settings_errors(path)
    assert len(errors) == 1 and errors[0].startswith(f"{path}: invalid TOML")
    missing = tmp_path / "none.toml"
    assert settings_errors(missing) == [f"{missing}: file not found"]
    with pytest.raises(BemctlError, match="file not found"):
        load_settings(missing)


def test_settings_rejects_unknown_kwargs_directly() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Settings(colour="red")
