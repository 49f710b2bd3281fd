"""How numbers, durations and statuses look in the console's tables."""

from __future__ import annotations

from rich.text import Text

from store.console import PhaseProgress
from store.states import RunStatus

STATUS_STYLES = {
    # run statuses; a job's are the same strings (store.states)
    RunStatus.QUEUED: "dim",
    RunStatus.RUNNING: "bold cyan",
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.INTERRUPTED: "yellow",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def duration(seconds: float | None) -> str:
    """12s, 3m05s, 1h02m: compact enough for a table column."""
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def num(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction * 100:.0f}%"


def phase_text(progress: PhaseProgress | None, width: int | None = None) -> str:
    """A job's phase in one line, as the console and `bemctl list` show it:
    "pre-train base model (cached after) 340/2000 loss 2.410 ETA 3m10s". Past `width`
    characters the phase's name is shortened, never its numbers."""
    if progress is None:
        return ""
    numbers = []
    if progress.total:
        numbers.append(f"{progress.step or 0}/{progress.total}")
    if progress.detail:
        numbers.append(progress.detail)
    eta = progress.eta_s
    if eta is not None:
        numbers.append(f"ETA {duration(eta)}")
    tail = " ".join(numbers)
    name = progress.name
    if width is not None:
        room = max(8, width - len(tail) - 1) if tail else width
        if len(name) > room:
            name = name[: room - 1] + "…"
    return f"{name} {tail}" if tail else name
