"""Bad input that must not hurt (issue 12), through the real CLI: every user error is one
line on stderr naming the file/field/value, exit 2, nothing run, nothing created."""

from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path

import pytest
import yaml

from bemctl.tui.specs import SpecScanner
from store.errors import BemctlError
from tests.engine.test_spec_limits import bomb

# ---------------------------------------------------------------- helpers


def _spec(project: Path, name: str, edit=None, *, where: Path | None = None) -> Path:
    data = yaml.safe_load((project / "experiments" / "v1_dynrank.yml").read_text())
    data["experiment_name"] = name
    if edit is not None:
        edit(data)
    path = (where or project / "experiments") / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_line(result, code: int = 2) -> str:
    assert result.code == code, (result.code, result.err)
    assert "Traceback" not in result.err
    assert result.err.count("\n") == 1, result.err
    return result.err.removeprefix("error: ").rstrip("\n")


class _Marker:
    """Unpickling this writes the marker file: what a hostile pytorch_model.bin does."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({str(self.path)!r}, 'w').write('ran')",))


def _remote_code_dir(directory: Path, model_type: str = "bemctl_custom") -> Path:
    """A model directory whose config points transformers at its own Python file, which
    would write a marker file when imported."""
    directory.mkdir()
    marker = directory / "MARKER"
    (directory / "custom_model.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class CustomConfig(PretrainedConfig):\n"
        f"    model_type = {model_type!r}\n"
    )
    config = {
        "model_type": model_type,
        "auto_map": {
            "AutoConfig": "custom_model.CustomConfig",
            "AutoModelForCausalLM": "custom_model.CustomModel",
        },
        "n_positions": 64,
    }
    (directory / "config.json").write_text(json.dumps(config))
    return marker


@pytest.fixture
def says_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input answers "y" to anything, so a "run the custom code? [y/N]" prompt
    would run it; bemctl must never ask."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 20))


# ---------------------------------------------------------------- 1. remote code


def test_model_dir_with_auto_map_is_refused_and_runs_nothing(project: Path, cli, says_yes) -> None:
    model = project / "custom-model"
    marker = _remote_code_dir(model)
    path = _spec(project, "custom", lambda d: d["model"].update(base_model=str(model)))
    expected = (
        f"{path}: model.base_model: {model}: config.json has auto_map (custom Python code "
        "in the model directory); bemctl never runs a model's own code"
    )
    assert _one_line(cli("validate", str(path))) == expected
    for command in ("queue", "run"):
        assert _one_line(cli(command, "custom", "--quick")) == expected, command
    assert not marker.exists()
    assert not (project / ".bemctl").exists()  # refused before the store was created


def test_auto_map_in_the_tokenizer_config_is_refused_too(project: Path, cli) -> None:
    model = project / "tok-model"
    _remote_code_dir(model, model_type="gpt2")
    config = json.loads((model / "config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({"auto_map": config.pop("auto_map")}))
    (model / "config.json").write_text(json.dumps(config))
    path = _spec(project, "tok", lambda d: d["model"].update(base_model=str(model)))
    line = _one_line(cli("validate", str(path)))
    assert line.startswith(f"{path}: model.base_model: {model}: tokenizer_config.json has auto_map")


def test_unknown_model_type_is_refused_at_validation(project: Path, cli) -> None:
    model = project / "odd-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "no_such_arch"}))
    path = _spec(project, "odd", lambda d: d["model"].update(base_model=str(model)))
    assert _one_line(cli("validate", str(path))) == (
        f"{path}: model.base_model: {model}: config.json: model_type 'no_such_arch' is not a "
        "model transformers knows; it could only load through the directory's own code, "
        "which bemctl never runs"
    )


def test_the_loader_itself_never_trusts_remote_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, says_yes
) -> None:
    """Even past validation (a directory edited after it was queued), loading passes
    trust_remote_code=False: no prompt, no code, one line."""
    from engine.models import base_model

    marker = _remote_code_dir(tmp_path / "m")
    monkeypatch.setattr(base_model, "check_base_model", lambda name: None)
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "y")
    with pytest.raises(BemctlError) as info:
        base_model.load_local_hf(tmp_path / "m")
    assert str(info.value).startswith(f"model.base_model: {tmp_path / 'm'}: cannot load: ")
    assert "\n" not in str(info.value)
    assert asked == [] and not marker.exists()


# ---------------------------------------------------------------- 2. pickle weights


def _pickle_model_dir(directory: Path) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2})
    )
    marker = directory / "UNPICKLED"
    (directory / "pytorch_model.bin").write_bytes(pickle.dumps(_Marker(marker)))
    return marker


def test_pickle_weights_are_refused_in_one_line(project: Path, cli) -> None:
    model = project / "pickled"
    marker = _pickle_model_dir(model)
    path = _spec(project, "pickled", lambda d: d["model"].update(base_model=str(model)))
    expected = (
        f"{path}: model.base_model: {model}: cannot load: its weights are a pickle "
        "(pytorch_model.bin), which can run code when read; bemctl loads safetensors only "
        "(save the model with save_pretrained(..., safe_serialization=True))"
    )
    assert _one_line(cli("validate", str(path))) == expected
    assert _one_line(cli("run", "pickled", "--quick")) == expected
    assert not marker.exists() and not (project / ".bemctl").exists()


def test_the_loader_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.models import base_model

    marker = _pickle_model_dir(tmp_path / "m")
    monkeypatch.setattr(base_model, "check_base_model", lambda name: None)
    with pytest.raises(BemctlError, match="cannot load"):
        base_model.load_local_hf(tmp_path / "m")
    assert not marker.exists()


# ---------------------------------------------------------------- 6. positions


def test_max_length_above_a_local_models_positions(project: Path, cli) -> None:
    model = project / "short-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 64}))
    (model / "model.safetensors").write_bytes(b"")  # never read by validation
    path = _spec(project, "short", lambda d: d["model"].update(base_model=str(model)))
    assert _one_line(cli("validate", str(path))) == (
        f"{path}: model.max_length: 256 exceeds the 64 positions of {model} "
        "(n_positions in its config); at most 64"
    )


# ---------------------------------------------------------------- 7. data files


def _jsonl_spec(project: Path, name: str, **data) -> Path:
    def edit(d: dict) -> None:
        d["data"] = {"task": "jsonl_qa", "max_new_tokens": 8, **data}

    return _spec(project, name, edit)


def _rows(path: Path, *rows: object) -> Path:
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    return path


def _row(i: int) -> dict:
    return {"id": f"q{i}", "context": f"k{i}: v{i}", "question": f"k{i}?", "answers": [f"v{i}"]}


def test_missing_data_file_fails_validate_and_queue(project: Path, cli) -> None:
    _rows(project / "eval.jsonl", _row(1), _row(2))
    path = _jsonl_spec(project, "data", train_file="../train.jsonl", eval_file="../eval.jsonl")
    train = project / "experiments" / "../train.jsonl"
    expected = f"{path}: data.train_file: {train}: file not found"
    assert _one_line(cli("validate", str(path))) == expected
    assert _one_line(cli("queue", "data")) == expected
    assert not (project / ".bemctl").exists()


@pytest.mark.parametrize(
    ("train", "problem"),
    [
        ("dir", "not a regular file"),
        ("bad_line", ":2: answers: field required"),
        ("bad_json", ":1: invalid JSON: Expecting value (column 1)"),
        ("not_utf8", "not valid UTF-8 (byte offset 8)"),
        ("empty", "no examples"),
    ],
)
def test_data_file_problems_name_file_line_and_field(
    project: Path, cli, train: str, problem: str
) -> None:
    target = project / f"{train}.jsonl"
    if train == "dir":
        target.mkdir()
    elif train == "bad_line":
        row = _row(2)
        del row["answers"]
        _rows(target, _row(1), row)
    elif train == "bad_json":
        _rows(target, "nope\n")
    elif train == "not_utf8":
        target.write_bytes(b'{"id": "\xff"}\n')
    else:
        target.write_text("\n\n")
    _rows(project / "eval.jsonl", _row(1), _row(2))
    path = _jsonl_spec(project, "data", train_file=str(target), eval_file="../eval.jsonl")
    line = _one_line(cli("validate", str(path)))
    assert line.startswith(f"{path}: data.train_file: {target}")
    assert line.endswith(problem), line


def test_oversized_data_file_is_refused_unread(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.tasks.jsonl as jsonl

    monkeypatch.setattr(jsonl, "DATA_FILE_BYTES", 300)  # eval.jsonl fits
    train = _rows(project / "train.jsonl", *[_row(i) for i in range(10)])
    _rows(project / "eval.jsonl", _row(1), _row(2))
    path = _jsonl_spec(project, "data", train_file=str(train), eval_file="../eval.jsonl")
    size = train.stat().st_size
    assert _one_line(cli("validate", str(path))) == (
        f"{path}: data.train_file: {train}: {size:,} bytes, larger than 300 bytes, the "
        "limit for a data file"
    )


def test_sizes_bounded_by_the_data_files(project: Path, cli) -> None:
    train = _rows(project / "train.jsonl", *[_row(i) for i in range(5)])
    evals = _rows(project / "eval.jsonl", _row(10))
    path = _jsonl_spec(project, "data", train_file=str(train), eval_file=str(evals))
    assert _one_line(cli("validate", str(path))) == (
        f"{path}: data.eval_file: {evals}: need at least 2 examples (got 1)"
    )
    _rows(evals, _row(10), _row(11))
    path = _jsonl_spec(project, "data", train_file=str(train), eval_file=str(evals), train_size=6)
    assert _one_line(cli("validate", str(path))) == (
        f"{path}: data.train_size: 6 is more than the 5 examples in {train}"
    )
    path = _jsonl_spec(project, "data", train_file=str(train), eval_file=str(evals))
    result = cli("validate", str(path))  # sizes left out are caps, as before
    assert (result.code, result.err) == (0, "")


# ---------------------------------------------------------------- 8. one set of rules


@pytest.mark.parametrize("command", ["validate", "queue", "run"])
def test_a_path_with_another_experiment_name_is_refused_everywhere(
    project: Path, cli, tmp_path: Path, command: str
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    path = _spec(project, "renamed", where=outside)
    path.write_text(path.read_text().replace("experiment_name: renamed", "experiment_name: v9"))
    args = (command, str(path)) + (() if command == "validate" else ("--quick",))
    assert _one_line(cli(*args)) == (
        f"{path}: experiment_name: must match the file name 'renamed' (got 'v9')"
    )
    assert not (project / ".bemctl").exists()


def test_booleans_are_refused_by_queue_too(project: Path, cli) -> None:
    path = _spec(project, "boolish", lambda d: d["training"].update(batch_size=True))
    assert _one_line(cli("queue", "boolish")) == (
        f"{path}: training.batch_size: must be an integer, not a boolean (got True)"
    )
    assert not (project / ".bemctl").exists()


# ---------------------------------------------------------------- 3. bombs in experiments/


def _plant_bad_specs(project: Path) -> list[Path]:
    experiments = project / "experiments"
    (experiments / "bomb.yml").write_text(bomb(9))
    (experiments / "deep.yml").write_text("x: " + "[" * 20_000 + "]" * 20_000 + "\n")
    (experiments / "huge.yml").write_bytes(b"#" * (2 << 20))
    return [experiments / n for n in ("bomb.yml", "deep.yml", "huge.yml")]


def test_validate_list_and_console_stay_small_with_bombs_in_experiments(project: Path, cli) -> None:
    bad = _plant_bad_specs(project)
    result = cli("validate")
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 3 and all(len(line) < 200 for line in lines), lines
    assert {line.split(": ")[0] for line in lines} == {str(p) for p in bad}

    result = cli("list")
    assert result.code == 0 and len(result.out) < 10_000
    for name in ("bomb", "deep", "huge"):
        assert any(line.split()[1:4] == [name, "│", "?"] for line in result.out.splitlines())

    entries = {e.name: e for e in SpecScanner().scan([project / "experiments"])}
    for name in ("bomb", "deep", "huge"):
        assert entries[name].status == "invalid"
        assert len(entries[name].problems) == 1 and len(entries[name].problems[0]) < 200
    assert entries["v1_dynrank"].status == "ok"


# ---------------------------------------------------------------- 5. bemctl.toml sizes


def test_absurd_quick_sizes_in_the_toml(project: Path, cli) -> None:
    toml = project / "bemctl.toml"
    toml.write_text(toml.read_text().replace("eval_examples = 24", "eval_examples = 1000000000"))
    expected = (
        f"{toml}: quick.eval_examples: Input should be less than or equal to 100000 "
        "(got 1000000000)"
    )
    result = cli("validate", str(toml))
    assert (result.code, result.err) == (2, expected + "\n")
    assert _one_line(cli("run", "v1_dynrank", "--quick")) == expected
    assert not (project / ".bemctl").exists()


def test_quick_training_draws_and_pretrain_corpus_are_bounded(tmp_path: Path) -> None:
    from engine.settings import settings_errors

    toml = tmp_path / "bemctl.toml"
    toml.write_text(
        "[quick]\ntrain_steps = 1000000\nbatch_size = 1024\n[pretrain]\ncorpus_docs = 10000000\n"
    )
    assert settings_errors(toml) == [
        f"{toml}: pretrain.corpus_docs: Input should be less than or equal to 100000 (got 10000000)"
    ]
    toml.write_text("[quick]\ntrain_steps = 1000000\nbatch_size = 1024\n")
    assert settings_errors(toml) == [
        f"{toml}: quick.train_steps: 1,000,000 steps x quick.batch_size 1024 draw "
        "1,024,000,000 examples, more than the limit of 10,000,000"
    ]
