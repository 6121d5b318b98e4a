"""From "this model, this much context, this many parallel requests, on this machine" to the
settings of a vLLM server that starts the first time: the quantized repo, --max-model-len,
--max-num-seqs, --gpu-memory-utilization, --kv-cache-dtype when needed to fit, tensor parallel
size. Catalog arithmetic only; no I/O."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..catalog import Catalog
from ..catalog.estimator import Fit, evaluate
from ..catalog.recommend import PLAYBOOK_PREFERENCE

DEFAULT_CONTEXT = 16384
"""saigen's prompt (~5 k tokens) + a 4 k reply, with room for repository data."""
MAX_NUM_SEQS_CAP = 256
"""vLLM's own default --max-num-seqs."""
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


class ServeRefused(Exception):
    """The request cannot be served as asked; the message says why and what would work."""


@dataclass(frozen=True)
class ServePlan:
    model: str
    """what the server is asked to load (HF repo or local path)"""
    served_model_name: str
    host: str
    port: int
    context: int
    max_num_seqs: int
    gpu_memory_utilization: float | None
    tensor_parallel_size: int
    kv_cache_dtype: str | None = None
    precision: str | None = None
    hardware: str | None = None
    fit: Fit | None = None
    gated: bool = False
    extra_args: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        wildcard = self.host in ("0.0.0.0", "::")  # noqa: S104 - recognising, not binding
        host = "127.0.0.1" if wildcard else self.host
        return f"http://{host}:{self.port}/v1"

    def vllm_args(self) -> list[str]:
        """Arguments after ``vllm serve`` (the model is the first)."""
        args = [
            self.model,
            "--served-model-name",
            self.served_model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.context),
            "--max-num-seqs",
            str(self.max_num_seqs),
        ]
        if self.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", f"{self.gpu_memory_utilization:g}"]
        args += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.kv_cache_dtype:
            args += ["--kv-cache-dtype", self.kv_cache_dtype]
        return args + list(self.extra_args)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _describe(fit: Fit) -> str:
    return (
        f"{fit.precision} ({fit.repo}): {fit.total_gb:.1f} of {fit.budget_gb:.1f} GB, up to "
        f"{fit.max_concurrency} requests"
    )


def build_plan(
    catalog: Catalog,
    model: str,
    *,
    hardware: str | None,
    precision: str | None = None,
    context: int | None = None,
    concurrency: int | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key_set: bool = False,
    gpu_memory_utilization: float | None = None,
    served_model_name: str | None = None,
    extra_args: list[str] | None = None,
) -> ServePlan:
    if not is_loopback(host) and not api_key_set:
        raise ServeRefused(
            f"refusing to bind {host} without an API key: anyone on the network could use the "
            "server. Give --api-key KEY (or SAIGEN_VLLM_API_KEY), or --generate-api-key, or "
            "bind 127.0.0.1."
        )
    spec = catalog.find_model(model)
    profile = catalog.hardware(hardware) if hardware else None
    extra = list(extra_args or [])
    if spec is None or profile is None:
        notes = []
        if spec is None:
            notes.append(f"{model} is not in the catalog: no memory check was made")
        if profile is None:
            notes.append("no hardware profile: vLLM's own memory defaults apply")
        util = gpu_memory_utilization or (profile.gpu_memory_utilization if profile else None)
        return ServePlan(
            model=model,
            served_model_name=served_model_name or model,
            host=host,
            port=port,
            context=context or (min(spec.max_context, DEFAULT_CONTEXT) if spec else 8192),
            max_num_seqs=concurrency or 16,
            gpu_memory_utilization=util,
            tensor_parallel_size=profile.gpus if profile else 1,
            hardware=hardware,
            gated=bool(spec and spec.gated),
            extra_args=extra,
            notes=notes,
        )
    ctx = context or min(spec.max_context, DEFAULT_CONTEXT)
    if ctx > spec.max_context:
        raise ServeRefused(
            f"{spec.id} supports at most {spec.max_context} tokens of context, not {ctx}"
        )
    wanted = concurrency or 1
    util = gpu_memory_utilization or profile.gpu_memory_utilization

    def fit_of(fmt: str, kv: str) -> Fit:
        return evaluate(
            spec,
            fmt,
            profile,
            context=ctx,
            concurrency=wanted,
            kv_cache_dtype=kv,
            gpu_memory_utilization=util,
        )

    formats = [v.format for v in spec.all_variants()]
    if precision is not None and precision not in formats:
        raise ServeRefused(
            f"{spec.id} has no {precision} variant in the catalog; it has: {', '.join(formats)}"
        )
    candidates = [precision] if precision else sorted(formats, key=PLAYBOOK_PREFERENCE.__getitem__)
    chosen: Fit | None = None
    for fmt in candidates:
        for kv in ("auto", "fp8"):
            fit = fit_of(fmt, kv)
            if fit.fits:
                chosen = fit
                break
        if chosen:
            break
    if chosen is None:
        working = []
        for fmt in formats:  # each format once: without fp8 KV when that fits, else with it
            found = next((f for f in (fit_of(fmt, "auto"), fit_of(fmt, "fp8")) if f.fits), None)
            if found is not None:
                working.append(found)
        what = f"{spec.id} as {precision}" if precision else spec.id
        reason = fit_of(candidates[0], "fp8").reason
        message = (
            f"{what} does not fit {profile.title} at {ctx} tokens x {wanted} requests: {reason}."
        )
        if working:
            message += " Variants that fit: " + "; ".join(
                _describe(f) + (" with --kv-cache-dtype fp8" if f.kv_cache_dtype == "fp8" else "")
                for f in working
            )
        else:
            message += " No variant fits; see `saigen-vllm recommend`."
        raise ServeRefused(message)
    max_seqs = concurrency or max(1, min(chosen.max_concurrency, MAX_NUM_SEQS_CAP))
    notes = []
    if chosen.kv_cache_dtype == "fp8":
        notes.append("--kv-cache-dtype fp8 halves the KV cache so the requests fit")
    return ServePlan(
        model=chosen.repo,
        served_model_name=served_model_name or spec.id,
        host=host,
        port=port,
        context=ctx,
        max_num_seqs=max_seqs,
        gpu_memory_utilization=util,
        tensor_parallel_size=chosen.tensor_parallel_size,
        kv_cache_dtype="fp8" if chosen.kv_cache_dtype == "fp8" else None,
        precision=chosen.precision,
        hardware=profile.name,
        fit=chosen,
        gated=spec.gated and chosen.repo == spec.id,
        extra_args=extra,
        notes=notes,
    )
