"""rich progress bars for the engine's phases (pre-train, train, evaluate, latency)."""

from __future__ import annotations

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
    def __init__(self, progress: Progress, task_id: int) -> None:
        self.progress, self.task_id = progress, task_id

    def advance(self, n: int = 1, info: str = "") -> None:
        self.progress.update(self.task_id, advance=n, info=info)

    def done(self) -> None:
        task = self.progress.tasks[self.task_id]
        self.progress.update(self.task_id, completed=task.total)


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
        if not self.console.is_terminal:
            self.console.print(f"{escape(name)}: {total} steps", highlight=False)
        task = self.progress.add_task(escape(name), total=total, info="")
        return _RichPhase(self.progress, task)

    def log(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)
