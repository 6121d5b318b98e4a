"""From "this model, this much context, this many parallel requests, on this machine" to the
settings of a vLLM server that starts the first time: the quantized repo, --max-model-len,
--max-num-seqs, --gpu-memory-utilization, --kv-cache-dtype when needed to fit, tensor parallel
size. Catalog arithmetic only; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog import Catalog
from ..catalog.estimator import Fit, evaluate
from ..catalog.recommend import PLAYBOOK_PREFERENCE
from ..catalog.schema import Hardware, ModelSpec
from ..settings import is_loopback

DEFAULT_CONTEXT = 16384
"""saigen's prompt (~5 k tokens) + a 4 k reply, with room for repository data."""
MAX_NUM_SEQS_CAP = 256
"""vLLM's own default --max-num-seqs."""
KEY_FLAGS = ("--api-key",)
"""vLLM flags that would put a key on the command line (visible in ``ps``, printed)."""


class ServeRefused(Exception):
    """The request cannot be served as asked; the message says why and what would work."""


@dataclass(frozen=True)
class ServePlan:
    model: str
    """what the server is asked to load (HF repo or local path)"""
    served_model_names: tuple[str, ...]
    """every name clients may use: the one given to serve first, then the catalog id and the
    repo loaded (vLLM accepts any of them and reports the first)"""
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
    nodes: int = 1
    reasoning_parser: str | None = None
    extra_args: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def served_model_name(self) -> str:
        """The name vLLM reports (the first served name)."""
        return self.served_model_names[0]

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
            *self.served_model_names,
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
        if self.nodes > 1:
            args += ["--distributed-executor-backend", "ray"]
        if self.reasoning_parser and not _flag_values(self.extra_args, "--reasoning-parser"):
            args += ["--reasoning-parser", self.reasoning_parser]
        return args + list(self.extra_args)


def _flag_values(args: list[str], flag: str) -> list[str]:
    """Every value ``args`` gives ``flag`` (``--flag V`` or ``--flag=V``), in order: vLLM's
    parser keeps the last."""
    values = []
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _without_flag(args: list[str], flag: str) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            kept.append(arg)
    return kept


def _names(*names: str | None) -> tuple[str, ...]:
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return tuple(seen)


def _named_variant(spec: ModelSpec, model: str) -> str | None:
    """The precision of the variant ``model`` names, when it names a variant's repo rather than
    the model: the model named is the model loaded."""
    for variant in spec.variants:
        if variant.repo.lower() == model.strip().lower():
            return variant.format
    return None


def _describe(fit: Fit) -> str:
    return (
        f"{fit.precision} ({fit.repo}): {fit.total_gb:.1f} of {fit.budget_gb:.1f} GB, up to "
        f"{fit.max_concurrency} requests"
    )


def build_plan(
    catalog: Catalog,
    model: str,
    *,
    hardware: str | Hardware | None,
    precision: str | None = None,
    context: int | None = None,
    concurrency: int | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key_set: bool = False,
    gpu_memory_utilization: float | None = None,
    served_model_name: str | None = None,
    extra_args: list[str] | None = None,
    cluster: bool = False,
) -> ServePlan:
    extra = list(extra_args or [])
    for flag in KEY_FLAGS:
        if _flag_values(extra, flag) or flag in extra:
            raise ServeRefused(
                f"refusing {flag} among the vLLM flags: a key on the command line is visible "
                "to every user in `ps` and is printed. Give it through SAIGEN_VLLM_API_KEY or "
                "--api-key-file PATH; serve hands it to vLLM as VLLM_API_KEY."
            )
    # vLLM's parser keeps the last --host / --port: the bind rule judges the one it will use
    host = (_flag_values(extra, "--host") or [host])[-1]
    ports = _flag_values(extra, "--port")
    if ports:
        if not ports[-1].isdigit() or not 0 < int(ports[-1]) < 65536:
            raise ServeRefused(f"--port {ports[-1]!r} among the vLLM flags is not a port number")
        port = int(ports[-1])
    extra = _without_flag(_without_flag(extra, "--host"), "--port")
    if not is_loopback(host) and not api_key_set:
        raise ServeRefused(
            f"refusing to bind {host} without an API key: anyone on the network could use the "
            "server. Give the key through SAIGEN_VLLM_API_KEY or --api-key-file PATH, or "
            "--generate-api-key, or bind 127.0.0.1."
        )
    spec = catalog.find_model(model)
    profile = catalog.hardware(hardware) if isinstance(hardware, str) else hardware
    if profile is not None and profile.nodes > 1 and not cluster:
        raise ServeRefused(
            f"{profile.name} is {profile.nodes} machines: one `vllm serve` cannot use them "
            f"without a Ray cluster. Give --cluster {profile.nodes} for the recipe "
            "(or --hardware gb10 for one machine)."
        )
    if profile is not None and cluster and profile.nodes < 2:
        raise ServeRefused(
            f"--cluster 2 spans two machines but --hardware {profile.name} is one; "
            "use --hardware gb10x2 (or leave --hardware out)"
        )
    named = _named_variant(spec, model) if spec is not None else None
    if named is not None and precision is not None and precision != named:
        raise ServeRefused(
            f"{model} is the {named} variant of {spec.id if spec else model}, not {precision}: "
            f"name {spec.id if spec else model} with --precision {precision}, or leave "
            "--precision out"
        )
    precision = precision or named
    reasoning_parser = spec.reasoning_parser if spec is not None else None
    if spec is None or profile is None:
        notes = []
        if spec is None:
            notes.append(f"{model} is not in the catalog: no memory check was made")
        if profile is None:
            notes.append("no hardware profile: vLLM's own memory defaults apply")
        util = gpu_memory_utilization or (profile.gpu_memory_utilization if profile else None)
        return ServePlan(
            model=model,
            served_model_names=_names(served_model_name or model),
            host=host,
            port=port,
            context=context or (min(spec.max_context, DEFAULT_CONTEXT) if spec else 8192),
            max_num_seqs=concurrency or 16,
            gpu_memory_utilization=util,
            tensor_parallel_size=profile.gpus if profile else 1,
            hardware=profile.name if profile else None,
            gated=bool(spec and spec.gated),
            nodes=profile.nodes if profile else 1,
            reasoning_parser=reasoning_parser,
            extra_args=extra,
            notes=notes,
        )
    ctx = context or min(spec.max_context, DEFAULT_CONTEXT)
    if ctx > spec.longest_context:
        raise ServeRefused(
            f"{spec.id} supports at most {spec.longest_context} tokens of context, not {ctx}"
        )
    if ctx > spec.max_context and spec.rope_scaling and not _flag_values(extra, "--hf-overrides"):
        # beyond the native context: vLLM needs the model's rope scaling (YaRN), as its card says
        import json

        overrides = json.dumps({"rope_scaling": spec.rope_scaling}, separators=(",", ":"))
        extra = ["--hf-overrides", overrides, *extra]
        extended_note = (
            f"{ctx} tokens is beyond the {spec.max_context} {spec.id} takes unscaled: YaRN rope "
            "scaling is on (static: it applies to short prompts too)"
        )
    else:
        extended_note = ""
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
    notes = [extended_note] if extended_note else []
    if profile.bandwidth_gbs is None:
        notes.append(f"planned for {profile.title}: {profile.memory_gib:g} GiB, no catalog profile")
    if chosen.kv_cache_dtype == "fp8":
        notes.append("--kv-cache-dtype fp8 halves the KV cache so the requests fit")
    return ServePlan(
        model=chosen.repo,
        served_model_names=_names(served_model_name or model, spec.id, chosen.repo)
        if served_model_name is None
        else (served_model_name,),
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
        nodes=profile.nodes,
        reasoning_parser=reasoning_parser,
        extra_args=extra,
        notes=notes,
    )
