"""Every format's rendering of a record's `sections` (a protocol's own measurements).

Generic on purpose: a section is a titled table of formatted cells plus notes
(`engine.sections.Section`), so a new measurement a protocol adds shows in the Markdown,
HTML and CSV reports and the terminal verdict without a line here.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from bemctl.reports.record_schema import ComparisonRecord, SectionRecord


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_lines(sections: Iterable[SectionRecord]) -> list[str]:
    out: list[str] = []
    for s in sections:
        out += ["", "| " + " | ".join(_md_cell(c) for c in s["columns"]) + " |"]
        out.append("|" + "---|" * len(s["columns"]))
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in s["rows"]]
        out += [line for note in s["notes"] for line in ("", f"**{note}**")]
    return out


def html_lines(sections: Iterable[SectionRecord]) -> list[str]:
    out: list[str] = []
    for s in sections:
        out.append(f"<h3>{escape(s['title'])}</h3>")
        out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in s["columns"]))
        out[-1] += "</tr>"
        out += [
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in s["rows"]
        ]
        out.append("</table>")
        out += [f"<p><strong>{escape(note)}</strong></p>" for note in s["notes"]]
    return out


def csv_cells(record: ComparisonRecord) -> dict[str, str]:
    """One CSV column per section cell, named `key/row label/column`: every row of the
    experiment carries them, so a spreadsheet filters on them like on any other column."""
    cells: dict[str, str] = {}
    for s in record.get("sections", []):
        for row in s["rows"]:
            for column, value in zip(s["columns"][1:], row[1:], strict=True):
                cells[f"{s['key']}/{row[0]}/{column}"] = value
    return cells


def notes(record: ComparisonRecord) -> list[str]:
    return [note for s in record.get("sections", []) for note in s["notes"]]


def brief(record: ComparisonRecord) -> list[str]:
    return [line for s in record.get("sections", []) for line in s["brief"]]
