"""One of a comparison's sections (a protocol's own measurements) on the Results screen:
its title, its table and its notes, whatever the protocol put in it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static

from bemctl.reports.record_schema import SectionRecord


class SectionTable(Vertical):
    DEFAULT_CSS = """
    SectionTable {
        height: auto;
    }
    SectionTable > .section-title {
        text-style: bold;
        padding: 0 1;
    }
    SectionTable > DataTable {
        height: auto;
    }
    SectionTable > .section-notes {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, section: SectionRecord, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.section = section

    def compose(self) -> ComposeResult:
        yield Label(self.section["title"], classes="section-title", markup=False)
        table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
        yield table
        if self.section["notes"]:
            text = Text()
            for i, note in enumerate(self.section["notes"]):
                text.append("! ", style="bold yellow")
                text.append(note + ("\n" if i < len(self.section["notes"]) - 1 else ""))
            yield Static(text, classes="section-notes")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*self.section["columns"])
        for row in self.section["rows"]:
            table.add_row(*row)
