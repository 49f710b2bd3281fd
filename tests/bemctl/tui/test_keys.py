"""[tui.keys]: overrides rebind actions; mistakes are one clear line at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from bemctl.tui.app import BemctlApp
from bemctl.tui.keys import ACTIONS, check_overrides
from bemctl.tui.screens.help import HelpScreen
from bemctl.tui.screens.queue_runs import QueueRunsScreen
from bemctl.tui.screens.results import ResultsScreen
from engine.settings import load_settings
from store.errors import BemctlError
from tests.bemctl.tui.helpers import wait_for


def _with_keys(project: Path, lines: str) -> None:
    with (project / "bemctl.toml").open("a") as fh:
        fh.write(f"\n[tui.keys]\n{lines}\n")


def test_unknown_action_is_a_one_line_error(fast_project: Path, cli) -> None:
    """Settings refuse it (the same rule for load_settings, validate and the console),
    naming the file; the console itself still checks what it is given."""
    _with_keys(fast_project, 'cancle = "k"')
    toml = fast_project / "bemctl.toml"
    line = f"{toml}: tui.keys.cancle: unknown console action (valid: "
    with pytest.raises(BemctlError) as info:
        load_settings()
    assert str(info.value).startswith(line)
    result = cli("tui")
    assert result.code == 2
    assert result.err.startswith("error: " + line)
    assert "cancel" in result.err and len(result.err.strip().splitlines()) == 1
    with pytest.raises(BemctlError, match=r"^tui\.keys\.cancle: unknown console action"):
        check_overrides({"cancle": "k"})


def test_key_taken_by_another_action_or_empty_is_refused() -> None:
    with pytest.raises(BemctlError, match=r"^tui\.keys\.sort: key 'x' is already bound to cancel"):
        check_overrides({"sort": "x"})
    with pytest.raises(BemctlError, match=r"^tui\.keys\.quit: empty key"):
        check_overrides({"quit": " "})
    # moving two actions onto each other's keys is fine
    assert check_overrides({"cancel": "s", "sort": "x"}) == {"cancel": "s", "sort": "x"}
    assert check_overrides({"help": "?"}) == {"help": "question_mark"}
    assert len({a.name for a in ACTIONS}) == len(ACTIONS)


@pytest.mark.anyio
async def test_override_rebinds_the_action_everywhere_it_shows(fast_project: Path) -> None:
    _with_keys(fast_project, 'show_results = "9"\nhelp = "h"')
    app = BemctlApp(load_settings())
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.press("2")  # the old key does nothing now
        await pilot.pause(0.1)
        assert isinstance(app.screen, QueueRunsScreen)
        await pilot.press("9")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), "results screen")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help screen")
        rows = {(key, name) for key, _, _, name in app.screen.rows}
        assert ("9", "show_results") in rows and ("h", "help") in rows
