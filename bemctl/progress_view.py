"""rich progress bars for the engine's phases (pre-train, train, evaluate, latency)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _RichPhase:
    def __init__(self, progress: Progress, task_id: int, console: Console, name: str) -> None:
        self.progress, self.task_id = progress, task_id
        self.console, self.name = console, name
        self.started = time.perf_counter()

    def advance(self, n: int = 1, info: str = "") -> None:
        self.progress.update(self.task_id, advance=n, info=info)

    def done(self) -> None:
        task = self.progress.tasks[self.task_id]
        self.progress.update(self.task_id, completed=task.total)
        if not self.console.is_terminal:  # logs get one line per phase with its duration
            took = time.perf_counter() - self.started
            self.console.print(f"{escape(self.name)}: done in {took:.1f} s", highlight=False)


class RichProgress:
    """A ProgressSink drawing one bar per phase; quiet when stderr is not a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not console.is_terminal,
        )

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, name: str, total: int) -> _RichPhase:
        task = self.progress.add_task(escape(name), total=total, info="")
        return _RichPhase(self.progress, task, self.console, name)

    def log(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)
