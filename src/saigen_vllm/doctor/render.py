"""The doctor's text form, flutter-doctor style: one line per check, hints under problems,
details with -v, and a summary line. Returns rich markup; the CLI prints it."""

from __future__ import annotations

import json

from rich.markup import escape

from .model import Report, Status

COLOURS = {
    Status.OK: "green",
    Status.INFO: "cyan",
    Status.WARN: "yellow",
    Status.FAIL: "red",
    Status.SKIPPED: "dim",
    Status.CRASHED: "magenta",
}


def render_text(report: Report, verbose: bool = False) -> list[str]:
    lines: list[str] = []
    width = max((len(r.id) for r in report.results), default=10)
    for result in report.results:
        colour = COLOURS[result.status]
        mark = f"[{colour}]\\[{result.status.symbol}][/]"
        lines.append(f"{mark} {result.id:<{width}}  {escape(result.summary)}")
        if result.hint and result.status is not Status.OK:
            lines.append(f"    [bold]→[/] {escape(result.hint)}")
        if verbose and result.details:
            for key, value in result.details.items():
                shown = value if isinstance(value, str) else json.dumps(value, default=str)
                lines.append(f"      [dim]{escape(str(key))}: {escape(str(shown))}[/]")
    failed, warned = len(report.failed), len(report.warnings)
    if failed or warned:
        lines.append(
            f"\nDoctor found issues in {failed + warned} check(s): {failed} failed, {warned} "
            "warning(s)."
        )
    else:
        lines.append("\n[green]No issues found![/]")
    return lines
