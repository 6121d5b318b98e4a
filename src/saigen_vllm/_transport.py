"""The only room that speaks HTTP: the openai SDK for ``/v1``, httpx for the server's own paths.

One ``httpx.AsyncClient`` and one ``AsyncOpenAI`` per endpoint are kept **per event loop**: the host
runs ``asyncio.run`` once per command, and a client bound to a closed loop fails with "Event loop is
closed". The SDK's own retries are off; :mod:`saigen_vllm._retrying` owns retrying.

``openai`` and ``httpx`` are imported on first use, never when the provider is loaded.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ._liveness import Observation
from ._redact import redact_url, split_credentials
from .errors import InvalidReply, TruncatedOutput

if TYPE_CHECKING:
    import httpx
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk

    from .settings import VLLMSettings

PLACEHOLDER_API_KEY = "EMPTY"
LOOPBACK_MOUNTS = ("all://127.0.0.1", "all://localhost", "all://[::1]")
"""Sent when no key is configured: the SDK refuses to start without one; vLLM ignores it."""


@dataclass(frozen=True)
class Completion:
    """One whole chat completion, assembled from the stream."""

    content: str
    finish_reason: str | None
    model: str
    endpoint: str
    request_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    time_to_first_token: float | None = None
    latency: float = 0.0
    reasoning_chars: int = 0
    """Characters of a leading think block cut from ``content`` (see :mod:`._reasoning`)."""


def merge_under(defaults: dict[str, Any] | None, chosen: dict[str, Any]) -> dict[str, Any]:
    """``chosen`` over ``defaults``, one level deep for mappings both give
    (``chat_template_kwargs``): what the user set always wins."""
    if not defaults:
        return chosen
    merged = dict(defaults)
    for key, value in chosen.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = {**below, **value}
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class ServedModel:
    """One entry of ``GET /v1/models``."""

    id: str
    max_model_len: int | None = None
    root: str | None = None


@dataclass(frozen=True)
class Worker:
    """One worker behind a router (vllm-router's ``GET /workers``)."""

    url: str
    """The worker's root URL (no ``/v1``)."""
    healthy: bool
    load: float | None = None


@dataclass(frozen=True)
class ServerMetrics:
    """The parts of ``GET /metrics`` a client cares about (``None``: not exported)."""

    requests_running: float | None = None
    requests_waiting: float | None = None
    kv_cache_usage: float | None = None
    prefix_cache_queries: float | None = None
    prefix_cache_hits: float | None = None
    prompt_tokens_total: float | None = None
    generation_tokens_total: float | None = None
    samples: dict[str, float] = field(default_factory=dict, repr=False)
    per_engine: dict[str, list[float]] = field(default_factory=dict, repr=False)
    """fraction gauges (KV-cache usage) per label set, in the order exported"""

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        if not self.prefix_cache_queries or self.prefix_cache_hits is None:
            return None
        return self.prefix_cache_hits / self.prefix_cache_queries


class ResponseTooLarge(Exception):
    """A body or a stream line beyond the client's caps (:mod:`saigen_vllm._bounded`)."""


class AnswerTooSlow(Exception):
    """A server path (``/health``, ``/metrics``, ``/v1/models``, ...) did not answer in full
    within its deadline: the whole exchange is bounded, not only each read."""


class StreamBroken(Exception):
    """The stream ended before the server said why it stopped (no finish_reason, no [DONE])."""


class NoResponseHeaders(Exception):
    """The server accepted the request but sent no response headers within headers_timeout.

    vLLM answers a streamed request with headers as soon as the prompt is tokenized, before the
    request is scheduled, so silence here means a hung server, never a long queue."""


def server_root(endpoint: str) -> str:
    """``http://h:8000/v1`` -> ``http://h:8000``: where /health, /version, /metrics live."""
    return endpoint[: -len("/v1")] if endpoint.endswith("/v1") else endpoint


class _LoopClients:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.openai: dict[str, AsyncOpenAI] = {}


class Transport:
    """HTTP access to one or more vLLM endpoints with the configured timeouts."""

    def __init__(self, settings: VLLMSettings) -> None:
        self._settings = settings
        self._stream_timeout: httpx.Timeout | None = None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"Transport(endpoints={[redact_url(u) for u in self._settings.endpoint_urls]!r})"

    # -- clients -------------------------------------------------------------------------------

    def _timeout(self, read: float) -> httpx.Timeout:
        import httpx

        s = self._settings
        return httpx.Timeout(
            connect=s.connect_timeout, read=read, write=read, pool=s.connect_timeout
        )

    def _loop_clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        clients = self._clients.get(loop)
        if clients is None:
            import httpx

            from ._bounded import bound_response

            http = httpx.AsyncClient(
                verify=self._settings.verify,
                timeout=self._timeout(self._settings.stall_timeout),
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=256),
                event_hooks={"response": [bound_response]},
                # a proxy from HTTP_PROXY must never see requests (and keys) for this machine
                mounts={pattern: None for pattern in LOOPBACK_MOUNTS},
            )
            clients = _LoopClients(http)
            self._clients[loop] = clients
        return clients

    def stream_timeout(self) -> httpx.Timeout:
        """For a generation: no per-read limit below ``timeout``, since a silent stream may be a
        queued request; the endpoint's liveness watcher judges silence instead. The pool wait is
        bounded by ``timeout`` too: waiting for a local connection is not the server's fault."""
        if self._stream_timeout is None:
            import httpx

            s = self._settings
            self._stream_timeout = httpx.Timeout(
                connect=s.connect_timeout, read=s.timeout, write=s.timeout, pool=s.timeout
            )
        return self._stream_timeout

    def openai_client(self, endpoint: str) -> AsyncOpenAI:
        clients = self._loop_clients()
        client = clients.openai.get(endpoint)
        if client is None:
            from openai import AsyncOpenAI

            bare, basic = split_credentials(endpoint)
            client = AsyncOpenAI(
                api_key=self._settings.api_key_value() or PLACEHOLDER_API_KEY,
                base_url=bare,
                max_retries=0,
                timeout=self._timeout(self._settings.stall_timeout),
                http_client=clients.http,
                default_headers={"Authorization": basic} if basic else None,
            )
            clients.openai[endpoint] = client
        return client

    def _headers(self, endpoint: str = "") -> dict[str, str]:
        """Credentials in the endpoint's URL go as HTTP Basic (as httpx does with them),
        else the API key as a bearer token."""
        basic = split_credentials(endpoint)[1] if endpoint else None
        if basic:
            return {"Authorization": basic}
        key = self._settings.api_key_value()
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def aclose(self) -> None:
        """Close the clients of the running loop (others die with their loops)."""
        loop = asyncio.get_running_loop()
        clients = self._clients.pop(loop, None)
        if clients is not None:
            await clients.http.aclose()

    # -- /v1 -----------------------------------------------------------------------------------

    async def chat(
        self,
        endpoint: str,
        *,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        response_format: dict[str, Any] | None = None,
        structured_outputs: dict[str, Any] | None = None,
        model_defaults: dict[str, Any] | None = None,
        on_chunk: Callable[[], None] | None = None,
    ) -> Completion:
        """Stream one chat completion and assemble it. ``on_chunk`` is called for every chunk
        (the liveness watcher's sign of progress); the caller bounds the whole of it.
        ``structured_outputs`` goes into the request body, under what ``extra_body`` sets there;
        ``model_defaults`` (the catalog's for this model) go under ``extra_body``."""
        client = self.openai_client(endpoint)
        started = time.perf_counter()
        request: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self.stream_timeout(),
        }
        if response_format is not None:
            request["response_format"] = response_format
        extra = merge_under(model_defaults, self._settings.extra_body)
        if structured_outputs is not None:
            configured = extra.get("structured_outputs")
            mine = {**structured_outputs, **(configured if isinstance(configured, dict) else {})}
            request["extra_body"] = {**extra, "structured_outputs": mine}
        elif extra:
            request["extra_body"] = dict(extra)
        try:
            created = await asyncio.wait_for(
                client.chat.completions.create(**request), timeout=self._settings.headers_timeout
            )
        except asyncio.TimeoutError:
            timeout = self._settings.headers_timeout
            raise NoResponseHeaders(f"no response within {timeout}s") from None
        stream = cast("AsyncStream[ChatCompletionChunk]", created)
        parts: list[str] = []
        finish_reason: str | None = None
        request_id: str | None = None
        served_model = model
        usage: Any = None
        first_token: float | None = None
        try:
            async for chunk in stream:
                if on_chunk is not None:
                    on_chunk()
                request_id = request_id or chunk.id
                served_model = chunk.model or served_model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        if first_token is None:
                            first_token = time.perf_counter() - started
                        parts.append(text)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        finally:
            await stream.close()
        if finish_reason is None:
            raise StreamBroken("the stream ended without a finish_reason")
        return Completion(
            content="".join(parts),
            finish_reason=finish_reason,
            model=served_model,
            endpoint=endpoint,
            request_id=request_id,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            total_tokens=getattr(usage, "total_tokens", None),
            time_to_first_token=first_token,
            latency=time.perf_counter() - started,
        )

    async def models(self, endpoint: str) -> list[ServedModel]:
        """``GET /v1/models``: what the server serves, with ``max_model_len``."""
        response = await self._fetch(endpoint, endpoint.rstrip("/") + "/models")
        if response.status_code != 200:
            response.raise_for_status()
        body = response.json()
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ValueError("/v1/models answered without a `data` list")
        served: list[ServedModel] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            max_len = item.get("max_model_len")
            root = item.get("root")
            served.append(
                ServedModel(
                    id=item["id"],
                    max_model_len=max_len if isinstance(max_len, int) else None,
                    root=root if isinstance(root, str) else None,
                )
            )
        return served

    # -- the server's own paths ----------------------------------------------------------------

    def _probe_read_timeout(self) -> float:
        """A server path answers in seconds; never longer than a whole generation may take."""
        return min(self._settings.stall_timeout, 10.0, self._settings.timeout)

    async def _fetch(
        self,
        endpoint: str,
        url: str,
        *,
        read: float | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request read in full, bounded as a whole: connect + ``read`` seconds for all of
        it (a server dripping a byte a second cannot hold it), the body capped in size."""
        clients = self._loop_clients()
        read = read or self._probe_read_timeout()
        bare, _ = split_credentials(url)
        request = (
            clients.http.get(bare, headers=self._headers(endpoint), timeout=self._timeout(read))
            if json is None
            else clients.http.post(
                bare, json=json, headers=self._headers(endpoint), timeout=self._timeout(read)
            )
        )
        deadline = self._settings.connect_timeout + read
        try:
            return await asyncio.wait_for(request, timeout=deadline)
        except asyncio.TimeoutError:
            raise AnswerTooSlow(
                f"{redact_url(bare)} did not answer in full within {deadline:g}s"
            ) from None

    async def _get(self, endpoint: str, path: str, read: float | None = None) -> httpx.Response:
        return await self._fetch(endpoint, server_root(endpoint) + path, read=read)

    async def workers(self, endpoint: str) -> list[Worker] | None:
        """vllm-router's ``GET /workers``; ``None`` when the endpoint is not such a router (a
        vLLM server answers 404)."""
        response = await self._get(endpoint, "/workers")
        if response.status_code != 200:
            return None
        body = _json_or_none(response)
        items = body.get("workers") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return None
        found = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                load = item.get("load")
                found.append(
                    Worker(
                        url=item["url"].rstrip("/"),
                        healthy=item.get("is_healthy") is not False,
                        load=float(load) if isinstance(load, (int, float)) else None,
                    )
                )
        return found

    async def worker_progress(self, worker: Worker) -> float | None:
        """A worker's own progress counters (its ``/metrics``, not the router's)."""
        response = await self._fetch(
            worker.url, worker.url + "/metrics", read=self._liveness_read_timeout()
        )
        return progress_counter(response.text) if response.status_code == 200 else None

    async def health(self, endpoint: str) -> int:
        """``GET /health``: the status code (200 healthy, 503/500 engine dead)."""
        return (await self._get(endpoint, "/health")).status_code

    async def version(self, endpoint: str) -> str | None:
        response = await self._get(endpoint, "/version")
        if response.status_code != 200:
            return None
        value = _json_or_none(response)
        return str(value.get("version")) if isinstance(value, dict) else None

    async def observe(self, endpoint: str) -> Observation:
        """One liveness poll: ``/health``, then the progress counters of ``/metrics``."""
        health = await self._get(endpoint, "/health", read=self._liveness_read_timeout())
        if health.status_code != 200:
            return Observation(healthy=False)
        response = await self._get(endpoint, "/metrics", read=self._liveness_read_timeout())
        if response.status_code != 200:
            return Observation(healthy=True)
        return Observation(healthy=True, progress=progress_counter(response.text))

    def _liveness_read_timeout(self) -> float:
        return max(1.0, min(5.0, self._settings.progress_timeout / 3))

    async def metrics(self, endpoint: str) -> ServerMetrics | None:
        response = await self._get(endpoint, "/metrics")
        if response.status_code != 200:
            return None
        return parse_metrics(response.text)

    async def count_prompt_tokens(
        self, endpoint: str, model: str, messages: list[dict[str, str]]
    ) -> int | None:
        """Tokens of the chat prompt as the server counts them (``POST /tokenize``), or ``None``."""
        response = await self._fetch(
            endpoint,
            server_root(endpoint) + "/tokenize",
            json={"model": model, "messages": messages},
        )
        if response.status_code != 200:
            return None
        value = _json_or_none(response)
        count = value.get("count") if isinstance(value, dict) else None
        return count if isinstance(count, int) else None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


_METRIC_NAMES = {
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "vllm:prefix_cache_queries": "prefix_cache_queries",
    "vllm:gpu_prefix_cache_queries": "prefix_cache_queries",
    "vllm:prefix_cache_hits": "prefix_cache_hits",
    "vllm:gpu_prefix_cache_hits": "prefix_cache_hits",
    "vllm:prompt_tokens": "prompt_tokens_total",
    "vllm:generation_tokens": "generation_tokens_total",
}


_PROGRESS_PREFIXES = ("vllm:generation_tokens_total", "vllm:prompt_tokens_total")


def progress_counter(text: str) -> float | None:
    """The sum of vLLM's token counters (prompt + generated, every engine): it rises whenever the
    server does work. A plain line scan, cheap enough to poll every second. ``None``: absent."""
    total: float | None = None
    for line in text.splitlines():
        if line.startswith(_PROGRESS_PREFIXES):
            try:
                value = float(line.rsplit(" ", 1)[-1])
            except ValueError:
                continue
            total = (total or 0.0) + value
    return total


def parse_metrics(text: str) -> ServerMetrics:
    """Parse vLLM's Prometheus text with prometheus_client's parser, per metric kind: counters
    and request counts are summed over label sets (engines, models); a gauge that is a fraction
    (KV-cache usage) is kept per engine and reported as the highest: two data-parallel engines
    at 60 % are at 60 %, not 120 %."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, float] = {}
    per_engine: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        fraction = family.type == "gauge" and family.name.endswith(_FRACTION_SUFFIXES)
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            value = float(sample.value)
            if fraction:
                per_engine.setdefault(sample.name, []).append(value)
                samples[sample.name] = max(samples.get(sample.name, value), value)
            else:
                samples[sample.name] = samples.get(sample.name, 0.0) + value
    values: dict[str, float] = {}
    for name, attr in _METRIC_NAMES.items():
        for candidate in (name, name + "_total"):
            if candidate in samples and attr not in values:
                values[attr] = samples[candidate]
    return ServerMetrics(samples=samples, per_engine=per_engine, **values)


_FRACTION_SUFFIXES = ("_perc", "_usage", "_ratio", "_fraction")


def without_reasoning(completion: Completion, *, max_tokens: int) -> Completion:
    """``completion`` with a leading think block cut off; one that is all reasoning is refused."""
    import dataclasses

    from ._reasoning import HINT, split_reasoning

    reasoning, answer, closed = split_reasoning(completion.content)
    if not reasoning:
        return completion
    if not closed:
        if completion.finish_reason == "length":
            raise TruncatedOutput(
                f"the model was still reasoning (<think> ... with no end) when it reached "
                f"max_tokens={max_tokens}: no saidata was written.",
                fix=HINT,
            )
        raise InvalidReply("the model's reply is reasoning only, with no saidata.", fix=HINT)
    return dataclasses.replace(completion, content=answer, reasoning_chars=len(reasoning))


def require_content(
    completion: Completion,
    *,
    max_tokens: int,
    expect_json: bool = False,
    json_constrained: bool = False,
) -> Completion:
    """Refuse a completion that is cut off, empty, or (``expect_json``) not JSON.
    ``json_constrained``: decoding was constrained to JSON (a cut-off reply says so)."""
    if completion.finish_reason == "length":
        if (expect_json or json_constrained) and not _parses_as_json(completion.content):
            raise TruncatedOutput(
                f"vLLM hit max_tokens={max_tokens} inside JSON-constrained output that does not "
                "parse (often whitespace runaway from a weak model): nothing was returned.",
                fix="use a stronger model, or set extra_body {structured_outputs: "
                "{disable_any_whitespace: true}}, or raise `max_tokens`.",
            )
        raise TruncatedOutput(
            f"vLLM stopped at the output limit after {completion.completion_tokens or '?'} "
            f"tokens (max_tokens={max_tokens}): the saidata is incomplete and was not returned.",
            fix="raise `max_tokens` in the provider config, and the server's --max-model-len "
            "if prompt plus output does not fit.",
        )
    if not completion.content.strip():
        raise InvalidReply(
            f"vLLM returned an empty reply (finish_reason={completion.finish_reason!r})."
        )
    if completion.finish_reason != "stop":  # e.g. "abort": the engine dropped the request
        raise InvalidReply(
            f"vLLM ended the reply with finish_reason={completion.finish_reason!r} after "
            f"{completion.completion_tokens or '?'} tokens, not a normal stop: it may be "
            "incomplete and was not returned."
        )
    if expect_json and not _parses_as_json(completion.content):
        raise InvalidReply(
            "vLLM was asked for JSON but the reply does not parse as JSON "
            f"(first 80 characters: {completion.content[:80]!r})."
        )
    return completion


def _parses_as_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return True
