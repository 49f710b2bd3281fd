"""Reading a spec file's YAML without letting the file hurt the reader.

`yaml.safe_load` runs no code, but a 300-byte file of nested aliases ("billion laughs")
composes into a structure whose tree has billions of nodes: everything that walks it as a
tree (validation, error messages) runs for minutes and runs out of memory, and YAML nested
20,000 levels deep exhausts the recursive composer's stack. So, before anything is
composed, one pass over the parser's events (libyaml's, when available: it keeps its own
stack, so deep nesting cannot overflow ours) counts the nodes the document expands to,
aliases included, and its nesting depth; only a document within `engine.limits` is then
loaded. The file itself is read up to `SPEC_FILE_BYTES` (plus one byte, to know it is over).

The loader also reads YAML 1.2 exponent floats such as `1e-3` as numbers (YAML 1.1, which
PyYAML follows, wants `1.0e-3` and would give the string "1e-3"): spec number fields refuse
strings, and `learning_rate: 1e-3` must not become an error.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from engine.limits import SPEC_DEPTH, SPEC_FILE_BYTES, SPEC_NODES, count
from store.errors import BemctlError, shorten

_FAST = getattr(yaml, "CSafeLoader", None)
_BaseLoader: type = _FAST or yaml.SafeLoader


class SpecLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader (libyaml's when present) that also reads `1e-3` as a float."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def read_spec_text(path: Path) -> str:
    """The file's text: a regular file (a FIFO would block, a device never end), at most
    SPEC_FILE_BYTES, UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BemctlError(f"{path}: file not found") from None
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BemctlError(f"{path}: not a regular file")
    limit = f"{count(SPEC_FILE_BYTES)} bytes (1 MiB), the limit for a spec file"
    if info.st_size > SPEC_FILE_BYTES:
        raise BemctlError(f"{path}: larger than {limit}")
    try:
        with path.open("rb") as fh:
            data = fh.read(SPEC_FILE_BYTES + 1)
    except OSError as exc:
        raise BemctlError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > SPEC_FILE_BYTES:  # grew since stat
        raise BemctlError(f"{path}: larger than {limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BemctlError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def _yaml_error(path: Path, exc: yaml.YAMLError) -> BemctlError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = str(getattr(exc, "problem", None) or exc)
    if "nesting depth" in problem:  # libyaml's own, far deeper, limit
        return BemctlError(f"{path}: {where}nested deeper than {SPEC_DEPTH} levels (the limit)")
    return BemctlError(f"{path}: {where}invalid YAML: {shorten(problem)}")


def check_structure(path: Path, text: str) -> None:
    """Refuse a document that nests deeper than SPEC_DEPTH or expands (aliases counted as
    copies of what they name) to more than SPEC_NODES nodes, from the event stream alone."""
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_anchors: list[str | None] = []
    stack = [0]  # nodes counted so far in each open collection (index 0: the document)
    total = 0

    def refuse(event: Any, what: str) -> BemctlError:
        return BemctlError(f"{path}: line {event.start_mark.line + 1}: {what}")

    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, _OPEN):
                if len(stack) > SPEC_DEPTH:
                    raise refuse(event, f"nested deeper than {SPEC_DEPTH} levels (the limit)")
                stack.append(1)
                open_anchors.append(event.anchor)
                total += 1
            elif isinstance(event, _CLOSE):
                size = stack.pop()
                anchor = open_anchors.pop()
                if anchor is not None:
                    sizes[anchor] = size
                stack[-1] += size
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                stack[-1] += 1
                total += 1
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise refuse(
                        event,
                        f"alias *{shorten(event.anchor)} refers to a node "
                        "that contains it (a recursive structure)",
                    )
                added = sizes.get(event.anchor, 1)  # unknown: the composer says so
                stack[-1] += added
                total += added
            if total > SPEC_NODES:
                raise refuse(
                    event,
                    f"expands to more than {count(SPEC_NODES)} YAML nodes (the limit; "
                    "aliases count as copies of what they name)",
                )
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None


def load_spec_yaml(path: Path) -> Any:
    """The document of one spec file, within the limits above."""
    text = read_spec_text(path)
    check_structure(path, text)
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except RecursionError:  # cannot happen within SPEC_DEPTH; never a traceback
        raise BemctlError(f"{path}: nested too deeply") from None
