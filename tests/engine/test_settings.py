"""bemctl.toml loading: defaults, validation (all errors at once), env overrides, path anchoring."""

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.settings import (
    CONFIG_NAME,
    LEASE_HEARTBEATS,
    MAX_SEED,
    PretrainSizes,
    QuickSizes,
    Settings,
    find_config,
    load_settings,
    settings_errors,
)
from store.errors import BemctlError

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


# -- one set of rules for every entry point ------------------------------------------------


def _same_line_everywhere(path: Path, cli) -> str:
    """`bemctl validate`, load_settings and the console (`bemctl tui` loads its settings
    before Textual starts) refuse `path` with one and the same line."""
    [line] = settings_errors(path)
    with pytest.raises(BemctlError) as info:
        load_settings(path)
    assert str(info.value) == line
    validated = cli("validate", str(path))
    assert (validated.code, validated.err) == (2, line + "\n")
    console = cli("--config", str(path), "tui")
    assert (console.code, console.err) == (2, f"error: {line}\n")
    return line


def test_lease_must_outlast_two_missed_heartbeats(tmp_path: Path, cli) -> None:
    path = _toml(tmp_path, "[worker]\nheartbeat_s = 10\nlease_s = 29.5\n")
    line = _same_line_everywhere(path, cli)
    assert line == (
        f"{path}: worker.lease_s: must be at least 3 x worker.heartbeat_s (= 30 s), "
        "so a job survives 2 missed heartbeats (got 29.5)"
    )
    assert LEASE_HEARTBEATS == 3
    ok = _toml(tmp_path / "ok", "[worker]\nheartbeat_s = 10\nlease_s = 30\n")
    assert load_settings(ok).worker.lease_s == 30.0


def test_lease_rule_blames_the_variable_that_broke_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(tmp_path, "[worker]\nheartbeat_s = 10\n")
    monkeypatch.setenv("BEMCTL_WORKER__LEASE_S", "20")
    with pytest.raises(BemctlError, match=r"^BEMCTL_WORKER__LEASE_S: worker\.lease_s: must be"):
        load_settings()


def test_console_key_conflict_is_the_same_error_everywhere(tmp_path: Path, cli) -> None:
    from bemctl.tui.keys import check_overrides

    path = _toml(tmp_path, '[tui.keys]\nsort = "x"\n')
    line = _same_line_everywhere(path, cli)
    with pytest.raises(BemctlError) as info:
        check_overrides({"sort": "x"})  # the one function all three use
    assert (
        line
        == f"{path}: {info.value}"
        == f"{path}: tui.keys.sort: key 'x' is already bound to cancel"
    )


def test_booleans_are_not_numbers(tmp_path: Path) -> None:
    path = _toml(
        tmp_path, "torch_threads = true\nfdr_alpha = false\n[quick]\neval_examples = true\n"
    )
    assert settings_errors(path) == [
        f"{path}: torch_threads: must be a number, not a boolean (got True)",
        f"{path}: fdr_alpha: must be a number, not a boolean (got False)",
        f"{path}: quick.eval_examples: must be a number, not a boolean (got True)",
    ]


def test_ints_stay_accepted_for_float_fields(tmp_path: Path) -> None:
    path = _toml(tmp_path, "latency_budget = 2\n[pretrain]\nlearning_rate = 1\n")
    s = load_settings(path)
    assert s.latency_budget == 2.0 and s.pretrain.learning_rate == 1.0


def test_seed_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(_toml(tmp_path / "a", f"seed = {MAX_SEED}\n")).seed == 2**32 - 1
    big = _toml(tmp_path / "b", f"seed = {MAX_SEED + 1}\n")
    assert settings_errors(big) == [
        f"{big}: seed: Input should be less than or equal to {MAX_SEED} (got {MAX_SEED + 1})"
    ]
    monkeypatch.setenv("BEMCTL_SEED", "-1")
    with pytest.raises(BemctlError, match=r"^BEMCTL_SEED: seed: .*greater than or equal to 0"):
        load_settings()


def test_non_utf8_toml_is_one_line(tmp_path: Path, cli) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_bytes(b"seed = 1\n# caf\xe9\n")
    line = f"{path}: not UTF-8 text (byte 0xe9 at offset 14); save it as UTF-8"
    assert settings_errors(path) == [line]
    with pytest.raises(BemctlError) as info:
        load_settings(path)
    assert str(info.value) == line
    for command in ("list", "tui", "doctor"):  # tui: the console's own start-up path
        result = cli(command)
        assert (result.code, result.err) == (2, f"error: {line}\n"), command


# -- the environment -----------------------------------------------------------------------


def test_bad_json_in_a_table_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.setenv("BEMCTL_WORKER", '{"lease_s":')
    line = (
        'BEMCTL_WORKER: expected a JSON object with keys such as "heartbeat_s", "lease_s" '
        """(got '{"lease_s":')"""
    )
    with pytest.raises(BemctlError) as info:
        load_settings()
    assert str(info.value) == line
    result = cli("list")
    assert (result.code, result.err) == (2, f"error: {line}\n")


def test_bad_value_inside_a_table_variable_blames_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, "[worker]\nheartbeat_s = 1\n")
    monkeypatch.setenv("BEMCTL_WORKER", '{"lease_s":"x"}')
    with pytest.raises(BemctlError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("BEMCTL_WORKER: worker.lease_s: Input should be a valid number")
    assert message.endswith("(got 'x')") and str(path) not in message


def test_a_table_variable_is_not_blamed_for_the_files_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, '[worker]\nlease_s = "x"\n')
    monkeypatch.setenv("BEMCTL_WORKER", '{"heartbeat_s": 1}')
    with pytest.raises(BemctlError, match=rf"^{re.escape(str(path))}: worker\.lease_s: "):
        load_settings()


def test_list_variable_must_be_json(monkeypatch: pytest.MonkeyPatch, cli, tmp_path: Path) -> None:
    monkeypatch.setenv("BEMCTL_EXPERIMENTS_DIRS", "experiments")
    line = (
        'BEMCTL_EXPERIMENTS_DIRS: expected a JSON list, e.g. ["experiments", '
        """"more_experiments"] (got 'experiments')"""
    )
    result = cli("list")
    assert (result.code, result.err) == (2, f"error: {line}\n")
    monkeypatch.setenv("BEMCTL_EXPERIMENTS_DIRS", '["specs", "/abs"]')
    assert load_settings().experiment_paths == [tmp_path.resolve() / "specs", Path("/abs")]


@pytest.mark.parametrize("name", ["BEMCTL_BASE_DIR", "BEMCTL_CONFIG_PATH", "bemctl_base_dir"])
def test_internal_settings_cannot_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli, name: str
) -> None:
    """They would move the store (or the file reported); setting one is a one-line error."""
    _toml(tmp_path, "seed = 1\n")
    monkeypatch.setenv(name, str(tmp_path / "elsewhere"))
    with pytest.raises(BemctlError, match=rf"^{name}: not a setting: bemctl derives "):
        load_settings()
    result = cli("queue", "v1_dynrank")
    assert result.code == 2 and result.err.startswith(f"error: {name}: not a setting")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / ".bemctl").exists()
    # even a Settings built directly ignores it
    assert Settings().base_dir == Path(".") and Settings().config_path is None


def test_internal_settings_cannot_come_from_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'config_path = "/x.toml"\n')
    assert settings_errors(path) == [f"{path}: config_path: unknown field (got '/x.toml')"]
