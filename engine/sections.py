"""A protocol's own measurements as a small table that every view renders the same way.

Why a section and not a field: each kind of experiment measures things only it has (the
router's plan length, V1's routing dynamics, a stream's promotions and rollbacks, a curve's
operating point). If each such measurement were a field of the report record, every
renderer (Markdown, HTML, CSV, the terminal verdict, the console) would need a line for it.
Instead the protocol that measures it builds a `Section` when the experiment finishes; the
store keeps it with the comparison, and every view renders sections generically. A new
measurement is then added in one place, the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Section:
    """A titled table of text cells, plus the sentences a reader must not miss.

    `columns` names every column, the first being the row labels' heading (e.g. ("router",
    "baseline", "variant")); each row has one cell per column, already formatted, so every
    view shows the same figures. `notes` are warnings every view shows prominently (static
    routing, a no-op gate); `brief` are the few lines the terminal verdict prints under its
    table (the rest is in the reports and the console).
    """

    key: str  # stable identifier, e.g. "router"; the CSV report's column prefix
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    brief: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.key or not self.columns:
            raise ValueError("a section needs a key and at least one column")
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"section {self.key!r}: row {row[:1]} has {len(row)} cells, "
                    f"expected {len(self.columns)} ({', '.join(self.columns)})"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "notes": list(self.notes),
            "brief": list(self.brief),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        return cls(
            key=str(data["key"]),
            title=str(data["title"]),
            columns=tuple(str(c) for c in data["columns"]),
            rows=tuple(tuple(str(c) for c in r) for r in data["rows"]),
            notes=tuple(str(n) for n in data.get("notes", ())),
            brief=tuple(str(b) for b in data.get("brief", ())),
        )


def sections_from_json(items: list[dict[str, Any]] | None) -> list[Section]:
    return [Section.from_dict(d) for d in items or []]
