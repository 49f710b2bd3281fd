"""Spec files that must not hurt: YAML bombs, deep nesting, huge files, booleans as numbers,
unbounded sizes, huge echoed values (issue 12, "Bad input that must not hurt")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from engine import limits
from engine.spec import load_spec, spec_errors
from engine.tasks.qa import distinct_items
from store.errors import BemctlError

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _v1(name: str) -> dict:
    data = yaml.safe_load((EXPERIMENTS / "v1_dynrank.yml").read_text())
    data["experiment_name"] = name
    return data


def _write(path: Path, data: dict | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def bomb(levels: int, fold: int = 9) -> str:
    """The classic alias bomb: each level lists the previous one `fold` times."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fold) + "]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- what the file may be


@pytest.mark.parametrize("levels", [7, 9])
def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path, levels: int) -> None:
    path = _write(tmp_path / "bomb.yml", bomb(levels))
    assert len(path.read_bytes()) < 600
    assert spec_errors(path) == [
        f"{path}: line 5: expands to more than 10,000 YAML nodes (the limit; aliases count "
        "as copies of what they name)"
    ]


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    data = _v1("aliases")
    text = yaml.safe_dump(data).replace("target_modules:", "target_modules: &t")
    path = _write(tmp_path / "aliases.yml", text + "description: &d shared\n")
    assert spec_errors(path) == []


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "rec.yml", "experiment_name: &x [1, *x]\n")
    [line] = spec_errors(path)
    assert line == (
        f"{path}: line 1: alias *x refers to a node that contains it (a recursive structure)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 20_000 + "]" * 20_000 + "\n",  # flow style
        "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v\n",  # block style
    ],
    ids=["flow", "block"],
)
def test_deep_nesting_is_refused_without_recursion(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "deep.yml", text)
    [line] = spec_errors(path)
    assert line.startswith(f"{path}: line ")
    assert line.endswith(": nested deeper than 64 levels (the limit)")


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    path.write_bytes(b"# " + b"x" * limits.SPEC_FILE_BYTES)
    assert spec_errors(path) == [
        f"{path}: larger than 1,048,576 bytes (1 MiB), the limit for a spec file"
    ]


def test_a_fifo_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yml"
    os.mkfifo(path)  # opening it for reading would block until a writer came
    assert spec_errors(path) == [f"{path}: not a regular file"]


def test_non_utf8_spec_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.yml"
    path.write_bytes(b"description: caf\xe9\n")
    assert spec_errors(path) == [
        f"{path}: not UTF-8 text (byte 0xe9 at offset 16); save it as UTF-8"
    ]


def test_huge_values_and_keys_are_shortened(tmp_path: Path) -> None:
    data = _v1("huge")
    data["experiment_name"] = "x" * 500_000 + "!"  # fails the name pattern
    data["k" * 100_000] = 1  # unknown field
    data["training"]["batch_size"] = "1" * 200_000
    data["validation"]["metrics"] = ["m" * 100_000]
    path = _write(tmp_path / "huge.yml", data)
    errors = spec_errors(path)
    assert len(errors) == 3, errors  # the metrics check runs once the fields are valid
    assert all(len(line) < len(str(path)) + 300 for line in errors), [len(e) for e in errors]
    assert any("…" in line for line in errors)


def test_problems_per_file_are_capped(tmp_path: Path) -> None:
    data = _v1("many")
    data["seeds"] = [True] * 50
    path = _write(tmp_path / "many.yml", data)
    errors = spec_errors(path)
    assert len(errors) == limits.SPEC_PROBLEMS + 1
    assert errors[0] == f"{path}: seeds.0: must be an integer, not a boolean (got True)"
    assert errors[-1] == f"{path}: ... and 40 more problems"


def test_yaml_12_exponents_are_numbers(tmp_path: Path) -> None:
    """PyYAML reads `1e-3` as a string (YAML 1.1 wants `1.0e-3`); number fields refuse
    strings, so the spec loader reads it as the number it is."""
    text = (EXPERIMENTS / "v1_dynrank.yml").read_text()
    assert "learning_rate: 2.0e-3" in text
    path = _write(tmp_path / "v1_dynrank.yml", text.replace("2.0e-3", "1e-3"))
    assert load_spec(path).spec.training.learning_rate == pytest.approx(1e-3)


# ---------------------------------------------------------------- numbers are numbers


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("training", "batch_size", True, "must be an integer, not a boolean"),
        ("training", "learning_rate", True, "must be a number, not a boolean"),
        ("training", "learning_rate", "2.0e-3", "must be a number, not a string"),
        ("training", "batch_size", 16.0, "must be an integer, not a float"),
        ("data", "eval_size", False, "must be an integer, not a boolean"),
        ("validation", "bootstrap_samples", True, "must be an integer, not a boolean"),
        ("constraints", "latency_budget", True, "must be a number, not a boolean"),
        ("acceptance_gates", "min_improvement", True, "must be a number, not a boolean"),
        ("bem_config", "rank_dimension", True, "must be an integer, not a boolean"),
        ("bem_config", "lora_alpha", "16", "must be a number, not a string"),
        ("bem_config", "active_ratio", True, "must be a number, not a boolean"),  # V1's own
        ("constraints", "latency_budget", float("inf"), "Input should be a finite number"),
    ],
)
def test_booleans_and_strings_are_not_numbers(
    tmp_path: Path, section: str, field: str, value: object, message: str
) -> None:
    data = _v1("nums")
    data[section][field] = value
    path = _write(tmp_path / "nums.yml", data)
    assert spec_errors(path) == [f"{path}: {section}.{field}: {message} (got {value!r})"]


def test_variant_fields_added_by_subclasses_are_strict_too(tmp_path: Path) -> None:
    data = yaml.safe_load((EXPERIMENTS / "v4_film.yml").read_text())
    data["bem_config"]["gamma_range"] = [0.5, True]  # a tuple field of V4's config
    data["bem_config"]["controller_rank"] = "4"
    path = _write(tmp_path / "v4_film.yml", data)
    assert spec_errors(path) == [
        f"{path}: bem_config.gamma_range.1: must be a number, not a boolean (got True)",
        f"{path}: bem_config.controller_rank: must be an integer, not a string (got '4')",
    ]


def test_seeds_are_seeds(tmp_path: Path) -> None:
    data = _v1("seeds")
    data["seeds"] = [0, 2**40]
    path = _write(tmp_path / "seeds.yml", data)
    [line] = spec_errors(path)
    assert line.startswith(f"{path}: seeds.1: Input should be less than or equal to 4294967295")


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("section", "field", "value", "limit"),
    [
        ("data", "eval_size", 1_000_000_000, 100_000),
        ("data", "train_size", 10**12, 200_000),
        ("training", "batch_size", 10**9, 1024),
        ("training", "max_steps", 10**9, 1_000_000),
        ("validation", "bootstrap_samples", 10**12, 1_000_000),
    ],
)
def test_absurd_sizes_name_the_limit(
    tmp_path: Path, section: str, field: str, value: int, limit: int
) -> None:
    data = _v1("sizes")
    data[section][field] = value
    path = _write(tmp_path / "sizes.yml", data)
    assert spec_errors(path) == [
        f"{path}: {section}.{field}: Input should be less than or equal to {limit} (got {value})"
    ]


def test_training_draws_are_bounded(tmp_path: Path) -> None:
    data = _v1("draws")
    data["training"].update(max_steps=None, max_epochs=1000, batch_size=1024)
    data["data"]["train_size"] = 200_000
    path = _write(tmp_path / "draws.yml", data)
    [line] = spec_errors(path)
    assert line.startswith(f"{path}: training: 196,000 steps x batch_size 1024 draw ")
    assert "more than the limit of 10,000,000" in line


def test_synthetic_tasks_can_generate_more_than_memory_allows() -> None:
    """The memory limits bind before any synthetic task runs out of distinct examples (the
    smallest space: synthetic_qa with one fact); raise the limits and this says so."""
    assert distinct_items(1) // 2 > limits.TRAIN_EXAMPLES
    assert distinct_items(1) == (26**3 - 7) * 40  # 7 three-letter values are never keys


def test_max_new_tokens_must_leave_room_for_the_prompt(tmp_path: Path) -> None:
    data = _v1("room")
    data["model"]["max_length"] = 64
    data["data"]["max_new_tokens"] = 64
    path = _write(tmp_path / "room.yml", data)
    assert spec_errors(path) == [
        f"{path}: data.max_new_tokens: 64 leaves no room for the prompt in "
        "model.max_length 64 (must be below it)"
    ]


def test_max_length_above_the_embedded_models_positions(tmp_path: Path) -> None:
    data = _v1("ctx")
    data["model"]["max_length"] = 8192
    path = _write(tmp_path / "ctx.yml", data)
    assert spec_errors(path) == [
        f"{path}: model.max_length: 8192 exceeds the 256 positions of embedded:tiny-gpt2 "
        "(n_positions in its config); at most 256"
    ]


def test_mixed_task_sizes_checked_at_validation(tmp_path: Path) -> None:
    data = yaml.safe_load((EXPERIMENTS / "ar0_bc.yml").read_text())
    data["data"]["max_new_tokens"] = 12
    path = _write(tmp_path / "ar0_bc.yml", data)
    assert spec_errors(path) == [
        f"{path}: data.max_new_tokens: synthetic_mixed needs at least 30 for its JSON "
        "answers (got 12)"
    ]


def test_data_files_only_for_jsonl(tmp_path: Path) -> None:
    data = _v1("files")
    data["data"]["train_file"] = "train.jsonl"
    path = _write(tmp_path / "files.yml", data)
    assert spec_errors(path) == [
        f"{path}: data.train_file: only tasks 'jsonl_qa' and 'jsonl_safety' read data files "
        "(task is 'synthetic_qa')"
    ]


# ---------------------------------------------------------------- one set of rules


def test_load_spec_applies_the_file_name_rule(tmp_path: Path) -> None:
    path = _write(tmp_path / "renamed.yml", _v1("other"))
    line = f"{path}: experiment_name: must match the file name 'renamed' (got 'other')"
    assert spec_errors(path) == [line]
    with pytest.raises(BemctlError) as info:
        load_spec(path)
    assert str(info.value) == line
