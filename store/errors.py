"""The one exception type the CLI turns into a single clean line and exit code 2.

Engine and store code raise it for anything the user can fix (bad input, bad config,
locked or foreign database); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

# The longest rendering of a user's value (or key) an error message echoes: a 1 MiB string
# in a spec must not become a 1 MiB error line.
SHOWN_CHARS = 80


class BemctlError(Exception):
    """A user-facing error: printed as one line; the process exits with `exit_code`."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` on one line and at most `limit` characters, cut with "…" when longer."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_repr(value: object, limit: int = SHOWN_CHARS) -> str:
    """repr(value), shortened; never walks more of a huge (or alias-shared) structure than
    it shows."""
    if isinstance(value, dict | list | tuple | set) and len(value) > limit:
        kind = type(value).__name__
        return f"<{kind} of {len(value)} items>"
    try:
        text = repr(value)
    except RecursionError:  # a self-referencing structure
        return f"<recursive {type(value).__name__}>"
    return shorten(text, limit)


def format_validation_errors(
    source: str, exc: object, *, drop_tags: frozenset[str] = frozenset()
) -> list[str]:
    """Render a pydantic ValidationError as `source: dotted.field: message (got X)` lines.

    Users fix YAML/TOML files, not Python objects, so every line names the file and the
    dotted path inside it; `drop_tags` removes discriminator tags pydantic inserts into the path.
    Every echoed value, key and message is shortened (`SHOWN_CHARS`), so no line is huge.
    """
    lines = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = ".".join(shorten(str(p)) for p in err["loc"] if str(p) not in drop_tags) or "(root)"
        msg = shorten(err["msg"].removeprefix("Value error, "), 4 * SHOWN_CHARS)
        got = err.get("input")
        reason = getattr(got, "reason", None)  # engine.numbers.NotANumber
        if isinstance(reason, str) and hasattr(got, "value"):
            msg, got = reason, got.value
        if not err["loc"] and err["type"] == "value_error":
            lines.append(f"{source}: {msg}")  # model-level check: its message names the field
            continue
        if err["type"] in {"missing"}:
            lines.append(f"{source}: {loc}: {msg}")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{source}: {loc}: unknown field (got {short_repr(got)})")
        else:
            lines.append(f"{source}: {loc}: {msg} (got {short_repr(got)})")
    return lines
