"""The ``saigen-vllm`` command line: thin; parses flags, calls the rooms, prints.

click and rich are what saigen's own CLI uses. This module is imported only when the command runs;
each command imports what it needs inside its body.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
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


_HARDWARE = click.option(
    "--hardware", default="gb10", show_default=True, help="Hardware profile (see --list-hardware)."
)
_CONTEXT = click.option(
    "--context",
    type=click.IntRange(min=1),
    default=8192,
    show_default=True,
    help="Tokens per request (prompt + output).",
)
_CONCURRENCY = click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Requests served at once.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
_KV_DTYPE = click.option(
    "--kv-cache-dtype",
    type=click.Choice(["auto", "fp8"]),
    default="auto",
    show_default=True,
    help="KV cache precision (vLLM --kv-cache-dtype); fp8 halves KV memory.",
)


def _catalog_or_exit() -> Any:
    from .catalog import load_catalog

    return load_catalog()


def _fit_table(fits: list[Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "model",
        "precision",
        "weights GB",
        "KV B/tok",
        "total GB",
        "fits",
        "max conc.",
        "tok/s (b=1)",
    ):
        table.add_column(
            column,
            justify="right" if "GB" in column or "tok" in column or "conc" in column else "left",
        )
    for fit in fits:
        table.add_row(
            fit.model,
            fit.precision,
            f"{fit.weights_gb:.1f}",
            f"{fit.kv_bytes_per_token:,}",
            f"{fit.total_gb:.1f}",
            "[green]✓[/]" if fit.fits else f"[red]✗[/] {fit.reason}",
            str(fit.max_concurrency),
            f"{fit.decode_tok_s:.1f}",
        )
    return table


@main.command()
@_HARDWARE
@_CONTEXT
@_CONCURRENCY
@_JSON
@_KV_DTYPE
@click.option("--fits-only", is_flag=True, help="Only the rows that fit.")
@click.option("--markdown", is_flag=True, help="Print docs/models.md (the GB10 table).")
@click.option("--list-hardware", is_flag=True, help="List the hardware profiles.")
def models(
    hardware: str,
    context: int,
    concurrency: int,
    as_json: bool,
    kv_cache_dtype: str,
    fits_only: bool,
    markdown: bool,
    list_hardware: bool,
) -> None:
    """Which catalog models fit HARDWARE at CONTEXT x CONCURRENCY, and how fast they decode."""
    from .catalog import UnknownName

    catalog = _catalog_or_exit()
    if list_hardware:
        for profile in catalog.hardware_profiles:
            click.echo(
                f"{profile.name:12} {profile.title} ({profile.gpus} GPU, "
                f"{profile.memory_gib} GiB, {profile.bandwidth_gbs} GB/s)"
            )
        return
    if markdown:
        from .catalog.markdown import render_models_markdown

        click.echo(render_models_markdown(catalog, hardware), nl=False)
        return
    try:
        fits = catalog.table(
            hardware, context=context, concurrency=concurrency, kv_cache_dtype=kv_cache_dtype
        )
    except UnknownName as exc:
        raise click.BadParameter(str(exc), param_hint="--hardware") from None
    if fits_only:
        fits = [fit for fit in fits if fit.fits]
    if as_json:
        click.echo(json.dumps([fit.as_dict() for fit in fits], indent=2))
        return
    from rich.console import Console

    Console().print(_fit_table(fits, f"{hardware}: {context} tokens x {concurrency} requests"))


@main.command()
@_HARDWARE
@_CONTEXT
@_CONCURRENCY
@_JSON
@_KV_DTYPE
@click.option(
    "--purpose",
    type=click.Choice(["saidata", "code", "long-context", "any"]),
    default="saidata",
    show_default=True,
)
@click.option("--min-tok-s", type=float, default=None, help="Lowest batch-1 decode ceiling.")
def recommend(
    hardware: str,
    context: int,
    concurrency: int,
    as_json: bool,
    kv_cache_dtype: str,
    purpose: str,
    min_tok_s: float | None,
) -> None:
    """The best model and precision for HARDWARE at CONTEXT x CONCURRENCY; why others do not fit."""
    from .catalog import UnknownName
    from .catalog.recommend import recommend as pick

    catalog = _catalog_or_exit()
    try:
        profile = catalog.hardware(hardware)
    except UnknownName as exc:
        raise click.BadParameter(str(exc), param_hint="--hardware") from None
    result = pick(
        catalog.models,
        profile,
        context=context,
        concurrency=concurrency,
        purpose=purpose,  # type: ignore[arg-type]
        min_decode_tok_s=min_tok_s,
        kv_cache_dtype=kv_cache_dtype,
    )
    # closest misses: models whose weights fit (only KV or context is short) before the rest
    biggest = sorted(
        result.rejected,
        key=lambda item: (
            item[0].weights_gb + item[0].reserve_gb > item[0].budget_gb,
            -item[0].weights_gb,
        ),
    )[:8]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "choice": result.choice.as_dict() if result.choice else None,
                    "alternatives": [fit.as_dict() for fit in result.alternatives],
                    "rejected": [{**fit.as_dict(), "why": why} for fit, why in result.rejected],
                },
                indent=2,
            )
        )
        sys.exit(0 if result.choice else 1)
    from rich.console import Console

    console = Console()
    if result.choice is None:
        console.print(
            f"[red]✗[/] Nothing in the catalog fits {profile.title} at {context} tokens "
            f"x {concurrency} requests for {purpose}. Closest misses:"
        )
        for fit, why in biggest:
            console.print(f"  {fit.model} {fit.precision}: {why}")
        hint = "fewer concurrent requests or a shorter context"
        if kv_cache_dtype != "fp8":
            hint += ", or --kv-cache-dtype fp8"
        console.print(f"Try {hint}.")
        sys.exit(1)
    fit = result.choice
    console.print(
        f"[green]✓[/] [bold]{fit.model}[/] as [bold]{fit.precision}[/] ({fit.repo})\n"
        f"  weights {fit.weights_gb:.1f} GB + KV {fit.kv_gb:.1f} GB"
        f" + reserve {fit.reserve_gb:.1f} GB = {fit.total_gb:.1f} GB of {fit.budget_gb:.1f} GB;"
        f" up to {fit.max_concurrency} requests"
        f" of {context} tokens; decode ceiling {fit.decode_tok_s:.1f} tok/s at batch 1;"
        f" tensor parallel {fit.tensor_parallel_size}"
    )
    if result.alternatives:
        console.print(
            "Also good: " + ", ".join(f"{a.model} {a.precision}" for a in result.alternatives)
        )


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="A saigen config YAML: every vLLM entry of llm_providers is checked.",
)
@click.option("--base-url", help="Server to check (default: SAIGEN_VLLM_BASE_URL or localhost).")
@click.option("--model", help="Model the server should serve.")
@click.option("--api-key", help="Key for the server (prefer SAIGEN_VLLM_API_KEY: argv is visible).")
@click.option("--hardware", help="Hardware profile for the probe's roofline (default: detected).")
@click.option("--probe", is_flag=True, help="Also run a short real generation (slow).")
@click.option("--check", "check_ids", multiple=True, help="Run only this check id or group.")
@click.option("--list-checks", is_flag=True, help="List the checks and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema in docs/doctor.md).")
@click.option("-v", "--verbose", is_flag=True, help="Show each check's details.")
def doctor(
    config_path: Path | None,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    hardware: str | None,
    probe: bool,
    check_ids: tuple[str, ...],
    list_checks: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Diagnose the chain: plugin, host, configuration, server, model, hardware.

    Exit status: 0 nothing failed, 1 a check failed, 2 the doctor itself could not run.
    """
    import asyncio

    from .doctor import DoctorCannotRun, DoctorOptions, run_doctor
    from .doctor import list_checks as known_checks

    if list_checks:
        for check_id, title, slow in known_checks():
            click.echo(f"{check_id:20} {title}{' (slow)' if slow else ''}")
        return
    options = DoctorOptions(
        config_path=config_path,
        base_url=base_url,
        model=model,
        api_key=api_key,
        hardware=hardware,
        probe=probe,
    )
    progress = None
    if not as_json and sys.stderr.isatty():
        from rich.console import Console

        progress = Console(stderr=True).status("checking…")
        progress.start()

    def on_check(check: Any) -> None:
        if progress is not None:
            progress.update(f"checking {check.id}{' (slow)' if check.slow else ''}…")

    try:
        report = asyncio.run(run_doctor(options, list(check_ids), on_check))
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    except DoctorCannotRun as exc:
        click.echo(f"doctor could not run: {exc}", err=True)
        sys.exit(2)
    finally:
        if progress is not None:
            progress.stop()
    if as_json:
        click.echo(report.to_json())
    else:
        from rich.console import Console

        from .doctor.render import render_text

        console = Console(highlight=False)
        for line in render_text(report, verbose):
            console.print(line)
    sys.exit(report.exit_code)
