import json
from pathlib import Path

import pytest

from engine.tasks.jsonl import load_qa_jsonl
from engine.tasks.qa import QAExample
from store.errors import BemctlError


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_DROP = object()


def _row(**over: object) -> str:
    row: dict[str, object] = {"id": "q1", "context": "abc: red", "question": "what is abc?"}
    row["answers"] = ["red"]
    row.update(over)
    return json.dumps({k: v for k, v in row.items() if v is not _DROP})


def _error(path: Path) -> str:
    with pytest.raises(BemctlError) as info:
        load_qa_jsonl(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_loads_both_answer_forms_and_int_ids(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _row(),
        "",
        "   ",
        _row(id=7, answers={"text": ["blue", "Blue!"], "answer_start": [5, 5]}),
        _row(id="ü", context="日本: 🦦", answers=["🦦"]),
    )
    assert load_qa_jsonl(path) == [
        QAExample("q1", "abc: red", "what is abc?", ("red",)),
        QAExample("7", "abc: red", "what is abc?", ("blue", "Blue!")),
        QAExample("ü", "日本: 🦦", "what is abc?", ("🦦",)),
    ]


def test_accepts_str_path_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes((_row() + "\r\n" + _row(id="q2") + "\r\n").encode())
    assert [e.id for e in load_qa_jsonl(str(path))] == ["q1", "q2"]  # type: ignore[arg-type]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    assert _error(path) == f"{path}: file not found"


def test_directory(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path}: not a regular file"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n")
    assert _error(path) == f"{path}: no examples"


def test_invalid_json(tmp_path: Path) -> None:
    path = _write(tmp_path, _row(), '{"id": "q2", ')
    assert _error(path).startswith(f"{path}:2: invalid JSON: ")


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n')
    assert _error(path).startswith(f"{path}: not valid UTF-8")


def test_not_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "[1, 2]")
    assert _error(path) == f"{path}:1: expected a JSON object (got [1, 2])"


@pytest.mark.parametrize("field", ["id", "context", "question", "answers"])
def test_missing_field(tmp_path: Path, field: str) -> None:
    path = _write(tmp_path, _row(), _row(id="q2"), _row(**{"id": "q3", field: _DROP}))
    assert _error(path) == f"{path}:3: {field}: field required"


@pytest.mark.parametrize(
    ("answers", "shown"),
    [(3, "3"), ([], "[]"), (["ok", 2], '["ok", 2]'), ("red", "'red'"), (None, "null")],
)
def test_bad_answers(tmp_path: Path, answers: object, shown: str) -> None:
    path = _write(tmp_path, _row(answers=answers))
    assert _error(path) == f"{path}:1: answers: expected a non-empty list of strings (got {shown})"


def test_bad_squad_answers(tmp_path: Path) -> None:
    path = _write(tmp_path, _row(answers={"text": [], "answer_start": []}))
    assert _error(path) == f"{path}:1: answers.text: expected a non-empty list of strings (got [])"
    path = _write(tmp_path, _row(answers={"answer_start": [0]}))
    assert _error(path) == f"{path}:1: answers.text: field required"


@pytest.mark.parametrize(
    ("field", "value", "shown"), [("context", 5, "5"), ("question", None, "null")]
)
def test_wrong_type_string_field(tmp_path: Path, field: str, value: object, shown: str) -> None:
    path = _write(tmp_path, _row(**{field: value}))
    assert _error(path) == f"{path}:1: {field}: expected a string (got {shown})"


@pytest.mark.parametrize(("value", "shown"), [(1.5, "1.5"), (True, "true"), ([1], "[1]")])
def test_bad_id_type(tmp_path: Path, value: object, shown: str) -> None:
    path = _write(tmp_path, _row(id=value))
    assert _error(path) == f"{path}:1: id: expected a string or integer (got {shown})"


def test_duplicate_id(tmp_path: Path) -> None:
    path = _write(tmp_path, _row(id="x"), _row(id="y"), "", _row(id="x"))
    assert _error(path) == f"{path}:4: id: duplicate id 'x'"


def test_duplicate_id_across_int_and_str(tmp_path: Path) -> None:
    path = _write(tmp_path, _row(id=1), _row(id="1"))
    assert _error(path) == f"{path}:2: id: duplicate id '1'"


def test_long_values_are_truncated(tmp_path: Path) -> None:
    path = _write(tmp_path, _row(context=list(range(200))))
    msg = _error(path)
    assert msg.endswith("…)") and len(msg) < len(str(path)) + 120
