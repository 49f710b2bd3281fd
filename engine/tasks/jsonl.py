"""Load user-supplied QA data in SQuAD-like JSONL, failing with one precise line per problem.

Each non-blank line is a JSON object with `id`, `context`, `question` and `answers`, where
`answers` is a list of strings or SQuAD's `{"text": [...], "answer_start": [...]}` (the offsets
are not needed for generative scoring and are ignored). Errors name file, line and field so the
user can fix the data without reading a traceback.

The file checks, decoding and line loop are shared by every JSONL row format
(`load_jsonl`/`preview_jsonl` with a row parser; `engine.tasks.safety_jsonl` is the other).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from engine.limits import DATA_FILE_BYTES, DATA_PREVIEW_BYTES, DATA_PREVIEW_LINES, count
from engine.tasks.qa import QAExample
from store.errors import BemctlError, shorten


def _show(value: Any) -> str:
    """A one-line, bounded rendering of an offending value for error messages."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return shorten(text)


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


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=_HasId)
# (where = "file:line", line number, the parsed JSON value) -> one example, or BemctlError
RowParser = Callable[[str, int, Any], Row]


def _qa_row(where: str, lineno: int, obj: Any) -> QAExample:
    return _example(where, obj)


def _open_checked(path: Path) -> int:
    """The size of a data file that exists, is a regular file (a FIFO would block a
    reader, a device never end) and is within DATA_FILE_BYTES; else a one-line error."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BemctlError(f"{path}: file not found") from None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BemctlError(f"{path}: not a regular file")
    if info.st_size > DATA_FILE_BYTES:
        raise BemctlError(
            f"{path}: {count(info.st_size)} bytes, larger than {count(DATA_FILE_BYTES)} "
            "bytes, the limit for a data file"
        )
    return info.st_size


@dataclass(frozen=True)
class Preview:
    """What validation learnt from the start of a data file."""

    checked: int  # examples parsed and found valid
    total: int | None  # every example in the file, when the preview reached its end


def preview_qa_jsonl(path: Path, lines: int = DATA_PREVIEW_LINES) -> Preview:
    """Check a data file without reading all of it: it exists, is a regular file within the
    size limit and readable, and its first `lines` examples (within DATA_PREVIEW_BYTES)
    parse; errors name file, line and field, as `load_qa_jsonl` would."""
    return preview_jsonl(path, _qa_row, lines)


def preview_jsonl(path: Path, row: RowParser, lines: int = DATA_PREVIEW_LINES) -> Preview:
    """`preview_qa_jsonl` for any row format (`row` parses one line's JSON value)."""
    path = Path(path)
    _open_checked(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(DATA_PREVIEW_BYTES + 1)
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None
    whole = len(head) <= DATA_PREVIEW_BYTES
    if not whole:  # only complete lines; a multi-byte character may be cut at the end
        head = head[: head.rfind(b"\n") + 1] if b"\n" in head else b""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BemctlError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None
    examples = _parse(path, text, row, limit=None if whole else lines)
    if whole and not examples:
        raise BemctlError(f"{path}: no examples")
    return Preview(min(len(examples), lines), len(examples) if whole else None)


def count_examples(path: Path) -> int:
    """Non-blank lines of a data file (each one example), read in one pass."""
    _open_checked(path)
    try:
        with Path(path).open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None


def _parse(path: Path, text: str, row: RowParser[Row], limit: int | None = None) -> list[Row]:
    examples: list[Row] = []
    seen: set[str] = set()
    # split("\n") rather than splitlines(): JSON strings may legally contain U+2028 and friends.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if limit is not None and len(examples) >= limit:
            break
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BemctlError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise BemctlError(f"{where}: invalid JSON: nested too deeply") from None
        ex = row(where, lineno, obj)
        if ex.id in seen:
            raise BemctlError(f"{where}: id: duplicate id {shorten(repr(ex.id))}")
        seen.add(ex.id)
        examples.append(ex)
    return examples


def load_qa_jsonl(path: Path) -> list[QAExample]:
    """Parse every example in `path`, raising BemctlError on the first problem found."""
    return load_jsonl(path, _qa_row)


def load_jsonl(path: Path, row: RowParser[Row]) -> list[Row]:
    """`load_qa_jsonl` for any row format (`row` parses one line's JSON value); the file
    checks, decoding, blank lines, duplicate ids and error lines are the same for all."""
    path = Path(path)
    _open_checked(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BemctlError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None

    examples = _parse(path, text, row)
    if not examples:
        raise BemctlError(f"{path}: no examples")
    return examples
