"""The `bemctl` commands, grouped by job; `bemctl.cli` registers them on the Typer app."""
