"""Every console action in one table: default key, footer label, where it applies.

One table because three things must agree: the bindings each screen declares, the help
screen, and the `[tui.keys]` overrides in bemctl.toml. Each binding's id is its action
name, so Textual's keymap swaps the key wherever that action is bound; an override naming
an action that does not exist would otherwise be silently ignored, hence `check_overrides`.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.keys import _character_to_key

from store.errors import BemctlError


@dataclass(frozen=True)
class Action:
    name: str  # binding id, `action_<name>` method, and the key in [tui.keys]
    key: str  # Textual key name
    description: str  # footer label
    where: str  # for the help screen
    show: bool = True


ACTIONS: tuple[Action, ...] = (
    Action("show_queue", "1", "Queue", "everywhere"),
    Action("show_results", "2", "Results", "everywhere"),
    Action("show_experiments", "3", "Experiments", "everywhere"),
    Action("start_worker", "w", "Worker", "everywhere"),
    Action("stop_worker", "W", "Stop worker", "everywhere"),
    Action("export", "e", "Export", "everywhere"),
    Action("help", "question_mark", "Help", "everywhere"),
    Action("quit", "q", "Quit", "everywhere"),
    Action("open_run", "enter", "Open", "Queue/Runs"),
    Action("filter", "slash", "Filter", "Queue/Runs"),
    Action("sort", "s", "Sort", "Queue/Runs"),
    Action("cancel", "x", "Cancel", "Queue/Runs, Run detail"),
    Action("retry", "r", "Retry", "Queue/Runs, Run detail"),
    Action("back", "escape", "Back", "Run detail, Help"),
    Action("select", "space", "Select", "Experiments"),
    Action("enqueue", "n", "Enqueue", "Experiments"),
    Action("toggle_quick", "t", "Quick/full", "Experiments"),
)
BY_NAME = {a.name: a for a in ACTIONS}


def binding(name: str, action: str | None = None) -> Binding:
    """The Binding for action `name`, with its id set so the keymap can rebind it.

    `action` routes it elsewhere (e.g. "screen.open_run" from a widget's bindings).
    """
    spec = BY_NAME[name]
    return Binding(spec.key, action or name, spec.description, show=spec.show, id=name)


def _normalise(key: str) -> str:
    """Textual's long key names ("?" -> "question_mark"), as its keymap stores them."""
    return ",".join(
        _character_to_key(k) if len(k) == 1 else k for k in (p.strip() for p in key.split(","))
    )


def check_overrides(overrides: dict[str, str]) -> dict[str, str]:
    """Validate `[tui.keys]` (action -> key) and return it as a Textual keymap.

    Raises a one-line BemctlError naming `tui.keys.<name>` for an unknown action, an empty
    key, or a key another action already uses (Textual would silently let one win).
    """
    valid = ", ".join(a.name for a in ACTIONS)
    keymap: dict[str, str] = {}
    for name, key in overrides.items():
        if name not in BY_NAME:
            raise BemctlError(f"tui.keys.{name}: unknown console action (valid: {valid})")
        if not key.strip() or any(not part.strip() for part in key.split(",")):
            raise BemctlError(f"tui.keys.{name}: empty key (got {key!r})")
        keymap[name] = _normalise(key)
    owners: dict[str, str] = {}
    for action in ACTIONS:
        for key in effective_key(action.name, keymap).split(","):
            if key in owners:
                culprit = action.name if action.name in keymap else owners[key]
                other = owners[key] if culprit == action.name else action.name
                raise BemctlError(f"tui.keys.{culprit}: key {key!r} is already bound to {other}")
            owners[key] = action.name
    return keymap


def effective_key(name: str, keymap: dict[str, str]) -> str:
    """The key(s) action `name` answers to under `keymap`."""
    return keymap.get(name) or BY_NAME[name].key
