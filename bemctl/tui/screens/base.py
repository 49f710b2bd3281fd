"""What every live screen shares: the app's poll refreshes it, a status line sits above
the footer.

The app's timer runs `fetch` on a worker thread (store reads only, so a slow disk never
freezes the UI) and then `show` on the UI thread with the result; `show` alone touches
widgets.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen
from textual.widgets import Static

from store.db import Store

if TYPE_CHECKING:
    from bemctl.tui.app import BemctlApp


class StatusLine(Static):
    """Store state and worker counts; plain text (paths and errors may hold brackets)."""

    def __init__(self) -> None:
        super().__init__(markup=False)

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """


class LiveScreen(Screen[None]):
    def fetch(self, store: Store | None) -> Any:
        """Read what `show` needs (worker thread; `store` is None until one exists)."""
        return None

    def show(self, data: Any) -> Awaitable[None] | None:
        """Display `data` from `fetch` (UI thread)."""
        return None

    def set_status(self, text: str) -> None:
        for line in self.query(StatusLine):
            line.update(text)

    def on_mount(self) -> None:
        self.bemctl.poll()  # a refresh delivered before the widgets existed was skipped

    def on_screen_resume(self) -> None:
        self.bemctl.poll()  # show fresh data at once, not a tick later

    @property
    def bemctl(self) -> BemctlApp:
        return cast("BemctlApp", self.app)
