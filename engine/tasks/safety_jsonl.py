"""Load the user's own safety data (task `jsonl_safety`) strictly, one precise line per problem.

Each non-blank line is a JSON object:

    {"prompt": "...", "must_refuse": false, "answers": ["..."]}
    {"prompt": "...", "must_refuse": true, "protected": ["7391"]}

- `prompt` (required): a non-empty string, fed to the model as is.
- `must_refuse` (required): true or false (not 0/1: a number there is likely a bug).
- `answers`: the acceptable answers of a benign row (required there; a non-empty list of
  strings, or SQuAD's {"text": [...]}, as `engine.tasks.jsonl` reads them). A must-refuse row
  is always answered with `REFUSAL`; it may omit `answers`, and if it gives them each must be
  that refusal (`is_refusal`), so a file cannot teach one answer and score another.
- `protected` (optional, must-refuse rows only): the strings the output must not reveal, in
  full or in part (`engine.evaluation.violations.leaks`); each needs a letter or digit, since
  leaks are found on letters and digits. Without it the detector only checks that the
  output is a refusal.
- `id` (optional): a string or integer, unique in the file; default "line-<n>".

Other fields are ignored (as SQuAD's extras are). The file checks, the size limit and the
error format (`file:line: field: problem`) are `engine.tasks.jsonl`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.evaluation.violations import REFUSAL, is_refusal, without_refusals
from engine.limits import DATA_PREVIEW_LINES
from engine.tasks.jsonl import Preview, _answers, _show, load_jsonl, preview_jsonl
from store.errors import BemctlError


@dataclass(frozen=True)
class SafetyRow:
    id: str
    prompt: str
    must_refuse: bool
    answers: tuple[str, ...]  # (REFUSAL,) for a must-refuse row
    protected: tuple[str, ...]  # empty for a benign row


def _row(where: str, lineno: int, obj: Any) -> SafetyRow:
    if not isinstance(obj, dict):
        raise BemctlError(f"{where}: expected a JSON object (got {_show(obj)})")
    raw_id = obj.get("id", f"line-{lineno}")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise BemctlError(f"{where}: id: expected a string or integer (got {_show(raw_id)})")
    if "prompt" not in obj:
        raise BemctlError(f"{where}: prompt: field required")
    prompt = obj["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise BemctlError(f"{where}: prompt: expected a non-empty string (got {_show(prompt)})")
    if "must_refuse" not in obj:
        raise BemctlError(f"{where}: must_refuse: field required")
    must_refuse = obj["must_refuse"]
    if not isinstance(must_refuse, bool):
        raise BemctlError(
            f"{where}: must_refuse: expected true or false (got {_show(must_refuse)})"
        )
    if must_refuse:
        return SafetyRow(str(raw_id), prompt, True, (REFUSAL,), _protected(where, obj))
    if "protected" in obj:
        raise BemctlError(f"{where}: protected: only a must_refuse row has protected values")
    if "answers" not in obj:
        raise BemctlError(f"{where}: answers: field required (must_refuse is false)")
    return SafetyRow(str(raw_id), prompt, False, _answers(where, obj["answers"]), ())


def _protected(where: str, obj: dict[str, Any]) -> tuple[str, ...]:
    if "answers" in obj:
        answers = _answers(where, obj["answers"])
        wrong = [a for a in answers if not is_refusal(a)]
        if wrong:
            raise BemctlError(
                f"{where}: answers: a must_refuse row is answered with the refusal "
                f"{REFUSAL!r}; omit answers or give only it (got {_show(wrong[0])})"
            )
    raw = obj.get("protected", [])
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise BemctlError(f"{where}: protected: expected a list of strings (got {_show(raw)})")
    for value in raw:
        if not without_refusals(value).strip():
            raise BemctlError(
                f"{where}: protected: {_show(value)} has no letter or digit outside the "
                "refusal's words, so no leak of it could be detected"
            )
    return tuple(raw)


def load_safety_jsonl(path: Path) -> list[SafetyRow]:
    """Every row of `path`, raising BemctlError on the first problem found."""
    return load_jsonl(Path(path), _row)


def preview_safety_jsonl(path: Path, lines: int = DATA_PREVIEW_LINES) -> Preview:
    """Check the file and its first `lines` rows without reading all of it (spec checks)."""
    return preview_jsonl(Path(path), _row, lines)
