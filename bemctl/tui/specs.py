"""The experiment specs the Experiments screen lists, each checked as `bemctl validate` does.

Read from the files (not the store) on every tick, so an edit shows up, with its
problems, while the console is open; a file is only parsed again when its size or
modification time changed (validating every spec costs ~50 ms, too much once a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.spec import inspect_spec, spec_files
from engine.variants.registry import get_entry


@dataclass(frozen=True)
class SpecEntry:
    name: str
    path: Path
    variant: str
    status: str  # "ok", "invalid" or "not implemented"
    problems: tuple[str, ...]

    @property
    def runnable(self) -> bool:
        return self.status == "ok"


class SpecScanner:
    """Lists the specs of some directories, re-checking only the files that changed."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], SpecEntry]] = {}

    def scan(self, directories: list[Path]) -> list[SpecEntry]:
        entries, cache = [], {}
        for name, path in spec_files(directories).items():
            try:
                stat = path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                stamp = (0, -1)
            cached = self._cache.get(path)
            entry = cached[1] if cached and cached[0] == stamp else check_spec(name, path)
            cache[path] = (stamp, entry)
            entries.append(entry)
        self._cache = cache
        return entries


def check_spec(name: str, path: Path) -> SpecEntry:
    """One spec as `bemctl validate` and `bemctl list` judge it (`inspect_spec`: the same
    rules, file name included)."""
    loaded, problems = inspect_spec(path)
    if problems or loaded is None:
        variant = loaded.spec.bem_config.variant if loaded is not None else "?"
        return SpecEntry(name, path, variant, "invalid", tuple(problems))
    variant = loaded.spec.bem_config.variant
    status = "ok" if get_entry(variant).builder else "not implemented"
    return SpecEntry(name, path, variant, status, ())
