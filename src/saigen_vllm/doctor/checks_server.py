"""Checks of each configured vLLM endpoint, through the provider's own transport."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from .._failures import FailureKind, classify, refuses_constraint
from .._redact import redact_url
from .._transport import ServerMetrics
from .context import DoctorContext, EndpointFacts, Target
from .model import CheckResult, Status
from .registry import check

START_HINT = (
    "start a server on this machine with `saigen-vllm serve MODEL` (see `saigen-vllm recommend`), "
    "wait while a model loads, or point --base-url / base_url at a running vLLM server"
)
SAIGEN_PROMPT_TOKENS = 5000
"""saigen's rendered `generation` prompt is about 14.6 k characters: ~5,000 tokens at 3 characters
per token, before any repository data. Measured with the server's tokenizer when possible."""
PROBE_PROMPT = "Write saidata for nginx."
"""Short on purpose: the probe times decoding, not saigen's long prompt."""
KV_CACHE_WARN = 0.9
WAITING_WARN = 1


def _blocked(facts: EndpointFacts, needs_model: bool, needs_key: bool) -> str | None:
    """Why a check cannot look at this endpoint yet, or None."""
    if not facts.reachable:
        return "server not reachable"
    if needs_key and facts.key_accepted is False:
        return "the API key is missing or refused"
    if needs_model and facts.model is None:
        return "no served model found"
    return None


async def _each_endpoint(
    ctx: DoctorContext,
    check_id: str,
    body: Callable[[Target, str, EndpointFacts], Awaitable[CheckResult]],
    *,
    always: bool = False,
    needs_key: bool = False,
    needs_model: bool = False,
) -> list[CheckResult]:
    pairs = ctx.endpoints()
    if not pairs:
        return [CheckResult(check_id, Status.SKIPPED, "no valid vLLM configuration to check")]
    results = []
    for target, endpoint in pairs:
        facts = ctx.fact(endpoint)
        shown = redact_url(endpoint)
        blocked = None if always else _blocked(facts, needs_model, needs_key)
        if blocked:
            results.append(
                CheckResult(check_id, Status.SKIPPED, f"{shown}: {blocked}", target=shown)
            )
            continue
        try:
            result = await body(target, endpoint, facts)
        except Exception as exc:
            failure = classify(exc, endpoint=endpoint, secret=_secret(target))
            if failure.kind is FailureKind.UNKNOWN:
                raise  # not a finding about the server: the check is reported as crashed
            result = CheckResult(
                check_id,
                Status.FAIL,
                f"{shown}: {failure.kind.value.replace('_', ' ')}",
                getattr(failure.error, "fix", None)
                or "see the server's log; `saigen-vllm doctor -v` shows the error",
                {"error": str(failure.error)},
            )
        result.target = shown
        results.append(result)
    return results


def _refused(exc: BaseException, endpoint: str) -> bool:
    """The server refused the request for want of a (valid) key: 401 or 403."""
    return classify(exc, endpoint=endpoint).kind is FailureKind.UNAUTHORIZED


def _secret(target: Target) -> str | None:
    return target.settings.api_key_value() if target.settings is not None else None


@check("server.reachable", "server reachable")
async def reachable(ctx: DoctorContext) -> list[CheckResult]:
    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        started = time.perf_counter()
        try:
            facts.health = await ctx.transport(target).health(endpoint)
        except Exception as exc:
            facts.reachable = False
            failure = classify(exc, endpoint=endpoint, secret=_secret(target))
            return CheckResult(
                "server.reachable",
                Status.FAIL,
                f"{redact_url(endpoint)}: {failure.kind.value.replace('_', ' ')}",
                START_HINT,
                {"error": str(failure.error)},
            )
        facts.reachable = True
        ms = (time.perf_counter() - started) * 1000
        try:
            facts.workers = await ctx.transport(target).workers(endpoint)
        except Exception:
            facts.workers = None
        what = f"a vllm-router with {len(facts.workers)} workers" if facts.workers else "vLLM"
        return CheckResult(
            "server.reachable",
            Status.OK,
            f"{redact_url(endpoint)} ({what}) answered in {ms:.0f} ms",
            details={"latency_ms": round(ms, 1), "router": facts.workers is not None},
        )

    return await _each_endpoint(ctx, "server.reachable", body, always=True)


@check("server.health", "engine healthy (/health)", requires=("server.reachable",))
async def health(ctx: DoctorContext) -> list[CheckResult]:
    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        if facts.health == 200:
            return CheckResult("server.health", Status.OK, f"{redact_url(endpoint)}: healthy")
        if facts.workers is not None:  # a router's /health is 503 while any one worker is down
            healthy = [w.url for w in facts.workers if w.healthy]
            status = Status.WARN if healthy else Status.FAIL
            return CheckResult(
                "server.health",
                status,
                f"{redact_url(endpoint)}: router with {len(healthy)} of "
                f"{len(facts.workers)} workers healthy",
                "see `server.router` for each worker; restart the unhealthy ones",
                {"healthy_workers": healthy},
            )
        return CheckResult(
            "server.health",
            Status.FAIL,
            f"{redact_url(endpoint)}: /health answered {facts.health}",
            "the engine is dead or still starting: check the server's log; restart it "
            "(on GB10: `sync; echo 3 > /proc/sys/vm/drop_caches` first frees page cache)",
            {"status_code": facts.health},
        )

    return await _each_endpoint(ctx, "server.health", body)


@check("server.version", "vLLM version (/version)", requires=("server.reachable",))
async def version(ctx: DoctorContext) -> list[CheckResult]:
    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        value = await ctx.transport(target).version(endpoint)
        if value is None:
            return CheckResult(
                "server.version",
                Status.WARN,
                f"{redact_url(endpoint)}: no /version (not vLLM?)",
                "saigen-vllm is tested against vLLM's OpenAI server",
            )
        return CheckResult("server.version", Status.OK, f"vLLM {value}", details={"version": value})

    return await _each_endpoint(ctx, "server.version", body)


@check("server.auth", "API key", requires=("server.reachable",))
async def auth(ctx: DoctorContext) -> list[CheckResult]:
    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        assert target.settings is not None
        shown = redact_url(endpoint)
        try:
            await ctx.transport(target, with_key=False).models(endpoint)
            facts.needs_key = False
        except Exception as exc:
            if not _refused(exc, endpoint):
                raise
            facts.needs_key = True
        has_key = target.settings.api_key is not None
        if not facts.needs_key:
            facts.key_accepted = True
            note = " (a key is configured but not needed)" if has_key else ""
            return CheckResult("server.auth", Status.OK, f"{shown}: no API key required{note}")
        if not has_key:
            facts.key_accepted = False
            return CheckResult(
                "server.auth",
                Status.FAIL,
                f"{shown}: the server requires an API key; none is set",
                "export SAIGEN_VLLM_API_KEY=<the server's --api-key> (or VLLM_API_KEY), or set "
                "api_key in the provider config",
            )
        try:
            await ctx.transport(target).models(endpoint)
            facts.key_accepted = True
        except Exception as exc:
            if not _refused(exc, endpoint):
                raise
            facts.key_accepted = False
            return CheckResult(
                "server.auth",
                Status.FAIL,
                f"{shown}: the configured API key was refused",
                "use the key the server was started with (--api-key)",
            )
        return CheckResult(
            "server.auth", Status.OK, f"{shown}: API key required and accepted (not shown)"
        )

    return await _each_endpoint(ctx, "server.auth", body)


@check("server.models", "served model (/v1/models)", requires=("server.auth",))
async def models(ctx: DoctorContext) -> list[CheckResult]:
    from .._client import pick_model
    from ..errors import ModelNotServed

    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        assert target.settings is not None
        facts.served = await ctx.transport(target).models(endpoint)
        names = [m.id for m in facts.served]
        try:
            chosen = pick_model(target.settings.model, facts.served, endpoint)
        except ModelNotServed as exc:
            return CheckResult(
                "server.models",
                Status.FAIL,
                exc.what,
                exc.fix,
                {"served": names},
            )
        facts.model = chosen.id
        facts.max_model_len = chosen.max_model_len
        return CheckResult(
            "server.models",
            Status.OK,
            f"serves {chosen.id} (max_model_len {chosen.max_model_len})",
            details={"served": names, "model": chosen.id, "max_model_len": chosen.max_model_len},
        )

    return await _each_endpoint(ctx, "server.models", body, needs_key=True)


async def _prompt_tokens(
    ctx: DoctorContext, target: Target, endpoint: str, model: str
) -> tuple[int, str]:
    """saigen's prompt for a typical package, counted by the server when it can."""
    from .. import _host
    from .._prompts import render_messages

    context = _host.GenerationContext(software_name="nginx")
    _, messages = render_messages(context)
    try:
        counted = await ctx.transport(target).count_prompt_tokens(endpoint, model, messages)
    except Exception:
        counted = None
    if _host.HOST_PRESENT and counted is not None:
        return counted, "saigen's own prompt for nginx, counted by the server"
    return SAIGEN_PROMPT_TOKENS, "estimate of saigen's prompt (about 14.6 k characters)"


@check(
    "server.context",
    "context window fits saigen's prompt + max_tokens",
    requires=("server.models",),
)
async def context_window(ctx: DoctorContext) -> list[CheckResult]:
    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        assert target.settings is not None and facts.model is not None
        limit = facts.max_model_len
        if limit is None:
            return CheckResult(
                "server.context",
                Status.WARN,
                f"{facts.model}: the server did not report max_model_len",
                "upgrade vLLM; LoRA cards report no max_model_len",
            )
        prompt, how = await _prompt_tokens(ctx, target, endpoint, facts.model)
        wanted = prompt + target.settings.max_tokens
        details = {
            "max_model_len": limit,
            "prompt_tokens": prompt,
            "prompt_source": how,
            "max_tokens": target.settings.max_tokens,
        }
        if prompt >= limit:
            return CheckResult(
                "server.context",
                Status.FAIL,
                f"max_model_len {limit} cannot hold saigen's prompt (~{prompt} tokens)",
                f"restart vLLM with --max-model-len {max(8192, wanted)} or more",
                details,
            )
        if wanted > limit:
            return CheckResult(
                "server.context",
                Status.WARN,
                f"max_model_len {limit} < prompt ~{prompt} + max_tokens "
                f"{target.settings.max_tokens}: output will be clamped to ~{limit - prompt}",
                f"restart vLLM with --max-model-len {wanted} or lower max_tokens",
                details,
            )
        return CheckResult(
            "server.context",
            Status.OK,
            f"max_model_len {limit} >= prompt ~{prompt} + max_tokens {target.settings.max_tokens}",
            details=details,
        )

    return await _each_endpoint(ctx, "server.context", body, needs_key=True, needs_model=True)


@check("server.router", "each worker behind a vllm-router", requires=("server.models",))
async def router_workers(ctx: DoctorContext) -> list[CheckResult]:
    """One line per worker: health, served model, context; nothing for a plain vLLM server."""
    results: list[CheckResult] = []
    for target, endpoint in ctx.endpoints():
        facts = ctx.fact(endpoint)
        if not facts.workers:
            continue
        transport = ctx.transport(target)
        shown = redact_url(endpoint)
        blocked = _blocked(facts, needs_model=True, needs_key=True)
        if blocked:
            results.append(
                CheckResult("server.router", Status.SKIPPED, f"{shown}: {blocked}", target=shown)
            )
            continue
        for worker in facts.workers:
            details: dict[str, object] = {"worker": worker.url, "healthy": worker.healthy,
                                          "load": worker.load}  # fmt: skip
            try:
                served = await transport.models(worker.url + "/v1")
            except Exception as exc:
                failure = classify(exc, endpoint=worker.url + "/v1", secret=_secret(target))
                results.append(
                    CheckResult(
                        "server.router",
                        Status.FAIL,
                        f"{worker.url}: {failure.kind.value.replace('_', ' ')}"
                        + ("" if worker.healthy else " (the router marks it unhealthy)"),
                        "start or restart that vLLM server; the router skips it meanwhile",
                        {**details, "error": str(failure.error)},
                        target=shown,
                    )
                )
                continue
            names = [m.id for m in served]
            match = [m for m in served if facts.model in (None, m.id)]
            limit = match[0].max_model_len if match else None
            details.update(served=names, max_model_len=limit)
            if not match:
                status, summary = Status.FAIL, f"{worker.url}: serves {', '.join(names)}"
                hint: str | None = f"every worker must serve {facts.model}"
            elif not worker.healthy:
                status, summary = Status.WARN, f"{worker.url}: serves it, but marked unhealthy"
                hint = "the router sends it nothing until its health checks pass again"
            else:
                status = Status.OK
                summary = f"{worker.url}: healthy, serves {match[0].id} (max_model_len {limit})"
                hint = None
            results.append(CheckResult("server.router", status, summary, hint, details, shown))
        limits = {r.details["max_model_len"] for r in results if r.details.get("max_model_len")}
        if len(limits) > 1:
            results.append(
                CheckResult(
                    "server.router",
                    Status.WARN,
                    f"{shown}: workers differ in max_model_len "
                    f"({', '.join(map(str, sorted(limits)))}); the provider plans for the "
                    f"smallest, {min(limits)}",
                    "start every worker with the same --max-model-len",
                    {"max_model_len": sorted(limits)},
                    shown,
                )
            )
    return results


def _kv_summary(data: ServerMetrics) -> str:
    if data.kv_cache_usage is None:
        return ""
    engines = data.per_engine.get("vllm:kv_cache_usage_perc") or []
    if len(engines) > 1:
        each = " / ".join(f"{value:.0%}" for value in engines)
        return f"KV cache {data.kv_cache_usage:.0%} at most ({each} over {len(engines)} engines)"
    return f"KV cache {data.kv_cache_usage:.0%}"


@check("server.metrics", "load and KV cache (/metrics)", requires=("server.reachable",))
async def metrics(ctx: DoctorContext) -> list[CheckResult]:
    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        data = await ctx.transport(target).metrics(endpoint)
        if data is None:
            return CheckResult("server.metrics", Status.INFO, "no /metrics exported")
        details = {
            "requests_running": data.requests_running,
            "requests_waiting": data.requests_waiting,
            "kv_cache_usage": data.kv_cache_usage,
            "kv_cache_usage_per_engine": data.per_engine.get("vllm:kv_cache_usage_perc"),
            "prefix_cache_hit_rate": data.prefix_cache_hit_rate,
        }
        parts = [
            f"running {data.requests_running:g}" if data.requests_running is not None else "",
            f"waiting {data.requests_waiting:g}" if data.requests_waiting is not None else "",
            _kv_summary(data),
            f"prefix-cache hits {data.prefix_cache_hit_rate:.0%}"
            if data.prefix_cache_hit_rate is not None
            else "",
        ]
        summary = ", ".join(p for p in parts if p) or "metrics exported"
        if data.kv_cache_usage is not None and data.kv_cache_usage >= KV_CACHE_WARN:
            return CheckResult(
                "server.metrics",
                Status.WARN,
                summary,
                "KV cache nearly full: requests will queue; lower saigen's "
                "concurrency or raise --gpu-memory-utilization / use fp8 KV cache",
                details,
            )
        if data.requests_waiting is not None and data.requests_waiting >= WAITING_WARN:
            return CheckResult(
                "server.metrics",
                Status.WARN,
                summary,
                "requests are queueing: the server is at capacity",
                details,
            )
        return CheckResult("server.metrics", Status.OK, summary, details=details)

    return await _each_endpoint(ctx, "server.metrics", body)


@check(
    "server.structured_output",
    "the server constrains saidata to its schema (--probe)",
    slow=True,
    needs_probe=True,
    requires=("server.models",),
)
async def structured_output(ctx: DoctorContext) -> list[CheckResult]:
    from .._structured import parse_version, saidata_constraint

    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        assert target.settings is not None and facts.model is not None
        mode = target.settings.structured_output
        constraint = saidata_constraint(mode, target.settings.response_schema)
        if constraint is None:
            why = "structured_output is off" if mode == "off" else "no saidata schema is known"
            return CheckResult(
                "server.structured_output",
                Status.INFO,
                f"saidata replies are not constrained: {why}",
                None
                if mode == "off"
                else "install saigen beside this package, or set `response_schema`",
                {"mode": mode},
            )
        transport = ctx.transport(target)
        try:
            version = parse_version(await transport.version(endpoint))
        except Exception:
            version = None
        response_format, structured = constraint.request_fields(version)
        details: dict[str, object] = {
            "mode": mode,
            "kind": constraint.kind,
            "schema": constraint.source,
            "form": "structured_outputs" if structured is not None else "response_format",
        }
        started = time.perf_counter()
        try:
            completion = await transport.chat(
                endpoint,
                model=facts.model,
                messages=[{"role": "user", "content": PROBE_PROMPT}],
                max_tokens=16,
                temperature=0.0,
                response_format=response_format,
                structured_outputs=structured,
            )
        except Exception as exc:
            if not refuses_constraint(exc):
                raise
            return CheckResult(
                "server.structured_output",
                Status.WARN,
                f"the server cannot compile the {constraint.source} schema: saidata requests "
                "will go unconstrained (one extra request per run)",
                "use vLLM >= 0.11 (xgrammar or guidance), or set `structured_output: json_object`",
                {**details, "error": str(exc)},
            )
        details["seconds"] = round(time.perf_counter() - started, 3)
        if not completion.content.lstrip().startswith("{"):
            return CheckResult(
                "server.structured_output",
                Status.WARN,
                "the server ignored the constraint (the reply is not JSON)",
                "check that this is vLLM and that no proxy strips `structured_outputs` / "
                "`response_format`",
                details,
            )
        return CheckResult(
            "server.structured_output",
            Status.OK,
            f"{constraint.kind} ({constraint.source or 'any object'}) compiled and enforced "
            f"in {details['seconds']}s, sent as {details['form']}",
            details=details,
        )

    return await _each_endpoint(
        ctx, "server.structured_output", body, needs_key=True, needs_model=True
    )


@check(
    "server.probe",
    "a short real generation (--probe)",
    slow=True,
    needs_probe=True,
    requires=("server.models", "hardware.gpu"),
)
async def probe(ctx: DoctorContext) -> list[CheckResult]:
    from ..catalog import load_catalog
    from ..catalog.estimator import decode_roofline

    async def body(target: Target, endpoint: str, facts: EndpointFacts) -> CheckResult:
        assert facts.model is not None
        messages = [{"role": "user", "content": PROBE_PROMPT}]
        completion = await ctx.transport(target).chat(
            endpoint, model=facts.model, messages=messages, max_tokens=64, temperature=0.0
        )
        tokens = completion.completion_tokens or 0
        ttft = completion.time_to_first_token
        decode_s = completion.latency - (ttft or 0.0)
        rate = tokens / decode_s if decode_s > 0 and tokens > 1 else None
        details: dict[str, object] = {
            "completion_tokens": tokens,
            "time_to_first_token_s": ttft,
            "tokens_per_second": rate,
            "finish_reason": completion.finish_reason,
        }
        summary = (
            f"{tokens} tokens, first after {ttft * 1000:.0f} ms" if ttft else f"{tokens} tokens"
        )
        if rate:
            summary += f", {rate:.1f} tok/s"
        catalog = load_catalog()
        spec = catalog.find_model(facts.model)
        hardware = ctx.options.hardware or (ctx.machine.profile_name if ctx.machine else None)
        if spec is not None and hardware and rate:
            precision = spec.precision_of(facts.model)
            ceiling = decode_roofline(spec, precision, catalog.hardware(hardware))
            if ceiling:
                details.update(
                    roofline_tok_s=round(ceiling, 1),
                    hardware=hardware,
                    precision=precision,
                    ratio_to_roofline=round(rate / ceiling, 2),
                )
                summary += (
                    f" = {rate / ceiling:.0%} of the {ceiling:.0f} tok/s ceiling on {hardware}"
                )
        return CheckResult("server.probe", Status.OK, summary, details=details)

    return await _each_endpoint(ctx, "server.probe", body, needs_key=True, needs_model=True)
