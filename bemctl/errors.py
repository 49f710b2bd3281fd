"""The one exception type the CLI turns into a single clean line and exit code 2.

Engine and store code raise it for anything the user can fix (bad input, bad config,
locked or foreign database); everything else is a bug and keeps its traceback.
"""


class BemctlError(Exception):
    """A user-facing error: printed as one line; the process exits with `exit_code`."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def format_validation_errors(
    source: str, exc: object, *, drop_tags: frozenset[str] = frozenset()
) -> list[str]:
    """Render a pydantic ValidationError as `source: dotted.field: message (got X)` lines.

    Users fix YAML/TOML files, not Python objects, so every line names the file and the
    dotted path inside it; `drop_tags` removes discriminator tags pydantic inserts into the path.
    """
    lines = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(p) for p in err["loc"] if str(p) not in drop_tags) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        if not err["loc"] and err["type"] == "value_error":
            lines.append(f"{source}: {msg}")  # model-level check: its message names the field
            continue
        if err["type"] in {"missing"}:
            lines.append(f"{source}: {loc}: {msg}")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{source}: {loc}: unknown field (got {got!r})")
        else:
            lines.append(f"{source}: {loc}: {msg} (got {_short(got)})")
    return lines


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
