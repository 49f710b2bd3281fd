"""Load user-supplied QA data in SQuAD-like JSONL, failing with one precise line per problem.

Each non-blank line is a JSON object with `id`, `context`, `question` and `answers`, where
`answers` is a list of strings or SQuAD's `{"text": [...], "answer_start": [...]}` (the offsets
are not needed for generative scoring and are ignored). Errors name file, line and field so the
user can fix the data without reading a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bemctl.errors import BemctlError
from engine.tasks.qa import QAExample

_MAX_SHOWN = 60


def _show(value: Any) -> str:
    """A one-line, bounded rendering of an offending value for error messages."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _answers(where: str, raw: Any) -> tuple[str, ...]:
    field = "answers"
    if isinstance(raw, dict):
        if "text" not in raw:
            raise BemctlError(f"{where}: answers.text: field required")
        field, raw = "answers.text", raw["text"]
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) for a in raw):
        raise BemctlError(
            f"{where}: {field}: expected a non-empty list of strings (got {_show(raw)})"
        )
    return tuple(raw)


def _string_field(where: str, obj: dict[str, Any], name: str) -> str:
    if name not in obj:
        raise BemctlError(f"{where}: {name}: field required")
    value = obj[name]
    if not isinstance(value, str):
        raise BemctlError(f"{where}: {name}: expected a string (got {_show(value)})")
    return value


def _example(where: str, obj: Any) -> QAExample:
    if not isinstance(obj, dict):
        raise BemctlError(f"{where}: expected a JSON object (got {_show(obj)})")
    if "id" not in obj:
        raise BemctlError(f"{where}: id: field required")
    raw_id = obj["id"]
    # bool is an int subclass, but `true` as an id is almost certainly a data bug.
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise BemctlError(f"{where}: id: expected a string or integer (got {_show(raw_id)})")
    context = _string_field(where, obj, "context")
    question = _string_field(where, obj, "question")
    if "answers" not in obj:
        raise BemctlError(f"{where}: answers: field required")
    return QAExample(str(raw_id), context, question, _answers(where, obj["answers"]))


def load_qa_jsonl(path: Path) -> list[QAExample]:
    """Parse every example in `path`, raising BemctlError on the first problem found."""
    path = Path(path)
    if not path.exists():
        raise BemctlError(f"{path}: file not found")
    if not path.is_file():
        raise BemctlError(f"{path}: not a regular file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BemctlError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None

    examples: list[QAExample] = []
    seen: set[str] = set()
    # split("\n") rather than splitlines(): JSON strings may legally contain U+2028 and friends.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BemctlError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        ex = _example(where, obj)
        if ex.id in seen:
            raise BemctlError(f"{where}: id: duplicate id {ex.id!r}")
        seen.add(ex.id)
        examples.append(ex)
    if not examples:
        raise BemctlError(f"{path}: no examples")
    return examples
