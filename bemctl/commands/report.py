"""`report`: the latest comparison of each experiment written up as Markdown, JSON, HTML
or CSV, to standard output or a file. The renderers live in bemctl.reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bemctl.commands.common import get_settings, open_store
from bemctl.output import err, stdout
from store.errors import BemctlError


def report(
    experiments: Annotated[
        list[str] | None, typer.Argument(help="experiment ids (default all)")
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="md, json, html (one self-contained file with plots) or csv (row per metric)",
        ),
    ] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to FILE")] = None,
) -> None:
    """The latest comparison of each experiment, as Markdown, JSON, HTML or CSV."""
    from bemctl.reports.curves import load_curves
    from bemctl.reports.markdown import render_markdown
    from bemctl.reports.records import build_records

    if format not in ("md", "json", "html", "csv"):
        raise BemctlError(f"--format: expected md, json, html or csv (got {format!r})")
    settings = get_settings()
    if not settings.store_path.exists():
        err.print("nothing to report: no store yet (run `bemctl run ...` first)")
        return
    with open_store(settings, readonly=True) as store:
        records = build_records(store, experiments)
        curves = load_curves(store, records) if format == "html" else {}
    if not records:
        err.print(
            "nothing to report: no finished comparisons"
            + (f" for {', '.join(experiments)}" if experiments else "")
        )
        return
    if format == "html":  # imported here: matplotlib takes a second to load
        from bemctl.reports.html import render_html

        text = render_html(records, curves)
    elif format == "csv":
        from bemctl.reports.csv_report import render_csv

        text = render_csv(records)
    else:
        text = render_markdown(records) if format == "md" else json.dumps(records, indent=2) + "\n"
    if output is None:
        stdout.write(text)
        stdout.flush()
        return
    from bemctl.reports.write import write_report

    write_report(output, text)
    err.print(f"wrote {output}")
