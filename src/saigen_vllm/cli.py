"""The ``saigen-vllm`` command line: thin; parses flags, calls the rooms, prints.

click and rich are what saigen's own CLI uses. This module is imported only when the command runs;
each command imports what it needs inside its body.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="saigen-vllm")
def main() -> None:
    """vLLM provider for saigen: run saidata generation on your own GPUs."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--no-load", is_flag=True, help="List only; do not import the plugins.")
def plugins(as_json: bool, no_load: bool) -> None:
    """List saigen provider plugins (entry point group saigen.providers) and whether each loads."""
    from .discovery import GROUP, conflicts, list_providers, try_load_all

    rows: list[dict[str, Any]] = []
    if no_load:
        for entry in list_providers():
            rows.append({**entry.__dict__, "loads": None, "error": None})
    else:
        for result in try_load_all():
            rows.append({**result.entry.__dict__, "loads": result.ok, "error": result.error})
    clashes = conflicts(list_providers())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not rows:
        console.print(f"No providers registered in entry point group [bold]{GROUP}[/].")
        return
    table = Table(title=f"entry point group {GROUP}")
    for column in ("name", "target", "distribution", "loads"):
        table.add_column(column)
    for row in rows:
        if row["loads"] is None:
            loads = "not checked"
        elif row["loads"]:
            loads = "[green]✓ yes[/]"
        else:
            loads = f"[red]✗ {row['error']}[/]"
        name = row["name"] if row["wins"] else f"{row['name']} [yellow](shadowed)[/]"
        dist = f"{row['distribution']} {row['version']}"
        table.add_row(name, row["target"], dist, loads)
    console.print(table)
    for name, claims in clashes.items():
        winner = claims[0]
        console.print(
            f"[yellow]![/] {len(claims)} distributions claim [bold]{name}[/]: "
            + ", ".join(str(c.distribution) for c in claims)
            + f"; {winner.distribution} wins (first on sys.path)."
        )
    if any(row["loads"] is False for row in rows):
        sys.exit(1)
