"""Checks of this Python environment: interpreter, packages, plugin registration, host, config."""

from __future__ import annotations

import platform
import sys

from .._redact import redact_url
from .._version import __version__
from ..discovery import distribution_version
from .context import DoctorContext
from .model import CheckResult, Status
from .registry import check

SUPPORTED_OPENAI = ((1, 40), (3, 0))  # [1.40, 3.0)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@check("env.python", "Python and platform")
async def python_and_platform(ctx: DoctorContext) -> CheckResult:
    arch = platform.machine()
    details = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "architecture": arch,
    }
    summary = f"Python {details['python']} on {platform.system()} {arch}"
    if arch in ("aarch64", "arm64"):
        summary += " (Arm, as on a GB10)"
    return CheckResult("env.python", Status.OK, summary, details=details)


@check("env.packages", "saigen-vllm and its libraries")
async def packages(ctx: DoctorContext) -> CheckResult:
    versions = {
        name: distribution_version(name)
        for name in ("saigen-vllm", "openai", "httpx", "pydantic", "pydantic-settings", "tenacity")
    }
    openai_version = versions["openai"]
    summary = f"saigen-vllm {__version__}, openai {openai_version}"
    if openai_version is None:
        return CheckResult(
            "env.packages",
            Status.FAIL,
            "openai is not installed",
            "pip install 'openai>=1.40,<3'",
            versions,
        )
    low, high = SUPPORTED_OPENAI
    current = _version_tuple(openai_version)
    if not (low <= current[:2] < high):
        return CheckResult(
            "env.packages",
            Status.WARN,
            summary + " (unsupported combination)",
            "saigen-vllm supports openai 1.40 to 2.x; saigen pins openai<2: "
            "pip install 'openai>=1.40,<2'",
            versions,
        )
    return CheckResult("env.packages", Status.OK, summary + " (supported)", details=versions)


@check("plugin.entry_point", "entry point saigen.providers:vllm")
async def entry_point(ctx: DoctorContext) -> CheckResult:
    from ..discovery import list_providers, load_provider
    from ..provider import VLLMProvider

    ours = [e for e in list_providers() if e.name == "vllm"]
    if not ours:
        return CheckResult(
            "plugin.entry_point",
            Status.FAIL,
            "no `vllm` entry point in group saigen.providers in this environment",
            f"pip install saigen-vllm into the environment saigen runs in ({sys.executable})",
        )
    loaded = load_provider("vllm")
    details = {
        "target": ours[0].target,
        "distribution": ours[0].distribution,
        "version": ours[0].version,
    }
    if loaded is not VLLMProvider:
        return CheckResult(
            "plugin.entry_point",
            Status.WARN,
            f"`vllm` loads {loaded.__module__}.{loaded.__qualname__}, not this package's class",
            "uninstall the other distribution or reinstall saigen-vllm",
            details,
        )
    return CheckResult(
        "plugin.entry_point", Status.OK, f"`vllm` -> {ours[0].target} loads", details=details
    )


@check("plugin.conflicts", "no other plugin claims `vllm`")
async def conflicts(ctx: DoctorContext) -> CheckResult:
    from ..discovery import conflicts as find
    from ..discovery import list_providers

    clash = find(list_providers()).get("vllm")
    if not clash:
        return CheckResult("plugin.conflicts", Status.OK, "only saigen-vllm provides `vllm`")
    names = [f"{c.distribution} {c.version}" for c in clash]
    return CheckResult(
        "plugin.conflicts",
        Status.WARN,
        f"{len(clash)} distributions claim `vllm`: {', '.join(names)}; {names[0]} wins",
        f"pip uninstall the ones you do not want ({', '.join(names[1:])})",
        {"claims": names},
    )


@check("host.saigen", "the host (saigen) in this environment")
async def host(ctx: DoctorContext) -> CheckResult:
    from .. import _host

    if _host.HOST_PRESENT:
        from saigen.llm.providers.base import BaseLLMProvider

        from ..provider import VLLMProvider

        version = distribution_version("saigen") or "unknown version"
        if not issubclass(VLLMProvider, BaseLLMProvider):
            return CheckResult(
                "host.saigen",
                Status.FAIL,
                "VLLMProvider is not a subclass of saigen's BaseLLMProvider",
                "reinstall saigen-vllm in saigen's environment",
            )
        return CheckResult(
            "host.saigen",
            Status.OK,
            f"saigen {version} importable; VLLMProvider is one of its providers",
            details={"version": version},
        )
    reason = _host.HOST_IMPORT_ERROR or "unknown"
    if "failed to import" in reason:
        return CheckResult(
            "host.saigen",
            Status.FAIL,
            f"saigen is installed but does not import: {reason}",
            "saigen needs Python 3.12+; run it (and saigen-vllm) with Python 3.12 or newer",
        )
    return CheckResult(
        "host.saigen",
        Status.WARN,
        f"saigen is not importable here ({reason}); the provider works standalone",
        f"to use it from saigen, install saigen-vllm where saigen is installed "
        f"(this Python: {sys.executable})",
    )


@check("host.loading", "how saigen loads this provider", requires=("host.saigen",))
async def host_loading(ctx: DoctorContext) -> CheckResult:
    from .._host_patch import PATCH_DOC, inspect_host

    loading = inspect_host()
    details = {"state": loading.state, "saigen": loading.version, "detail": loading.detail}
    if loading.state == "native":
        return CheckResult(
            "host.loading",
            Status.OK,
            f"saigen {loading.version} discovers saigen.providers plugins itself: run "
            "`saigen ...` as usual",
            details=details,
        )
    if loading.state == "run":
        return CheckResult(
            "host.loading",
            Status.WARN,
            f"saigen {loading.version} does not discover plugins: plain `saigen` would use "
            "its in-tree vllm provider and drop keys such as base_url",
            f"run it as `saigen-vllm run saigen ...` (or apply {PATCH_DOC} to saigen)",
            details,
        )
    if loading.state == "absent":
        return CheckResult(
            "host.loading", Status.SKIPPED, "saigen is not importable here", details=details
        )
    return CheckResult(
        "host.loading",
        Status.FAIL,
        f"saigen {loading.version} cannot load this provider: {loading.detail}",
        f"upgrade saigen-vllm (pip install -U saigen-vllm), or apply {PATCH_DOC} to saigen",
        details,
    )


def _catalog_name(model: str) -> str | None:
    """The catalog id of ``model`` when `saigen-vllm serve` would not serve it under the name
    written (a short name, another spelling); None when it would, or it is not in the catalog."""
    from ..catalog import load_catalog

    spec = load_catalog().find_model(model)
    if spec is None:
        return None
    names = [spec.id, *(variant.repo for variant in spec.variants)]
    return None if model in names else spec.id


@check("config.valid", "provider configuration")
async def config_valid(ctx: DoctorContext) -> list[CheckResult]:
    if not ctx.targets:
        return [
            CheckResult(
                "config.valid",
                Status.FAIL,
                "the --config file has no vLLM provider entry",
                "add an entry with `provider: vllm` under llm_providers "
                "(see examples/saigen-config.yaml)",
            )
        ]
    results = []
    for target in ctx.targets:
        if target.settings is None:
            results.append(
                CheckResult(
                    "config.valid",
                    Status.FAIL,
                    f"{target.name}: invalid configuration",
                    target.error,
                    {"field": target.field},
                    target=target.name,
                )
            )
            continue
        if target.env_refs:
            keys = ", ".join(f"`{key}`" for key in target.env_refs)
            results.append(
                CheckResult(
                    "config.valid",
                    Status.FAIL,
                    f"{target.name}: {keys} hold a ${{VAR}} reference, which neither saigen nor "
                    "this provider expands: the text itself would be sent",
                    "write the value itself, or leave the key out and set it in the environment "
                    "(VLLM_API_KEY, or SAIGEN_VLLM_<KEY>)",
                    {"keys": target.env_refs},
                    target=target.name,
                )
            )
            continue
        s = target.settings
        if s.hooks:
            from ..hooks import hooks_from_paths

            try:
                hooks_from_paths(s.hooks)
            except Exception as exc:
                results.append(
                    CheckResult(
                        "config.valid",
                        Status.FAIL,
                        f"{target.name}: `hooks` = {s.hooks!r} do not load: "
                        f"{type(exc).__name__}: {exc}",
                        "install the module that defines them where saigen runs, or remove them "
                        "(docs/hooks.md)",
                        {"field": "hooks"},
                        target=target.name,
                    )
                )
                continue
        shown_urls = [redact_url(url) for url in s.endpoint_urls]
        details = {
            "endpoints": shown_urls,
            "model": s.model or "(the one served)",
            "api_key": "set" if s.api_key else "not set",
            "max_tokens": s.max_tokens,
            "timeouts": {
                "connect": s.connect_timeout,
                "stall": s.stall_timeout,
                "generation": s.timeout,
            },
            "max_retries": s.max_retries,
        }
        summary = f"{target.name}: {', '.join(shown_urls)}, model {details['model']}"
        status, hint = Status.OK, None
        served_as = _catalog_name(s.model) if s.model else None
        exposed = s.exposure()
        if exposed:
            status = Status.WARN
            hint = "; ".join(exposed)
        elif served_as is not None:
            status = Status.WARN
            summary += f" (`saigen-vllm serve` serves it as {served_as})"
            hint = f"set `model: {served_as}` (or start the server with --served-model-name)"
        elif s.gpu_memory_utilization > 0.87:
            status = Status.WARN
            hint = (
                "gpu_memory_utilization above 0.87 starves the OS on unified memory (GB10): use 0.8"
            )
        results.append(
            CheckResult("config.valid", status, summary, hint, details, target=target.name)
        )
    return results
