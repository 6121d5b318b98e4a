"""Error classification, in one place: every failure becomes a :class:`Failure`.

A ``Failure`` carries the host exception to raise and three decisions: retry on the same endpoint
(``transient``), move on to the next endpoint (``next_endpoint``), and count against that endpoint's
circuit breaker (``trips_circuit``). ``docs/reliability.md`` lists every row with the test that
proves it.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ._host import LLMProviderError
from ._liveness import EngineUnresponsive, Verdict
from ._redact import redact_url
from ._transport import NoResponseHeaders, StreamBroken
from .errors import (
    BadRequest,
    ConstraintRefused,
    ContextLengthExceeded,
    GenerationError,
    InvalidConfiguration,
    InvalidReply,
    ModelNotServed,
    Overloaded,
    ServerError,
    ServerUnreachable,
    TruncatedOutput,
    Unauthorized,
)


class FailureKind(str, enum.Enum):
    CONNECT_REFUSED = "connect_refused"
    UNKNOWN_HOST = "unknown_host"
    CONNECT_TIMEOUT = "connect_timeout"
    RESET = "reset"
    STALL = "stall"
    ENGINE_HUNG = "engine_hung"  # the endpoint made no progress for progress_timeout
    ENGINE_DEAD = "engine_dead"  # its /health failed while requests were in flight
    LOCAL_POOL = "local_pool"  # no free connection in this process: not the server's fault
    STREAM_BROKEN = "stream_broken"
    UNAVAILABLE = "unavailable"  # 502/503/504
    NO_WORKER = "no_worker"  # a router's 503: none of its workers can take the request
    WORKER_FAILED = "worker_failed"  # a router's 500: the worker it chose did not answer
    SERVER_ERROR = "server_error"  # 500 and other 5xx
    RATE_LIMITED = "rate_limited"  # 429
    REQUEST_TIMEOUT = "request_timeout"  # 408
    CONTEXT_LENGTH = "context_length"  # 400 with a context wording
    CONSTRAINT_REFUSED = "constraint_refused"  # 400: the grammar backend refused the schema
    BAD_REQUEST = "bad_request"  # other 400, 422
    MODEL_NOT_FOUND = "model_not_found"  # 404 naming a model
    WRONG_PATH = "wrong_path"  # other 404: base_url is off
    UNAUTHORIZED = "unauthorized"  # 401/403
    STREAM_ERROR = "stream_error"  # in-band SSE error after a 200
    MALFORMED = "malformed"  # unparsable body or event
    INVALID_REPLY = "invalid_reply"  # empty, not JSON when JSON was asked, abnormal stop
    TRUNCATED = "truncated"  # finish_reason == "length"
    DEADLINE = "deadline"  # the whole generation took longer than `timeout`
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    error: LLMProviderError
    transient: bool = False
    next_endpoint: bool = False
    trips_circuit: bool = False
    retry_after: float | None = None
    status_code: int | None = None


_CONTEXT_PATTERNS = (
    re.compile(r"maximum context length is (\d+) tokens", re.I),
    re.compile(r"is too large: (\d+)", re.I),
    re.compile(r"longer than the maximum model length of (\d+)", re.I),
    re.compile(r"cannot be greater than max_model_len=(\d+)", re.I),
    re.compile(r"max_model_len", re.I),
)


def is_context_length_message(message: str) -> bool:
    return any(pattern.search(message) for pattern in _CONTEXT_PATTERNS)


_CONSTRAINT_WORDS = re.compile(
    r"grammar|json schema|structured.output|guided|xgrammar|guidance|outlines|regex parse", re.I
)


_NO_WORKER = re.compile(r"no (healthy )?workers? (are |is )?(currently )?available", re.I)
_WORKER_UNREACHABLE = re.compile(r"error sending request for url", re.I)


def is_no_worker_message(message: str) -> bool:
    """vllm-router's words for "no worker can take it": "No workers are currently available"."""
    return _NO_WORKER.search(message) is not None


def is_worker_unreachable_message(message: str) -> bool:
    """vllm-router's words for "the worker I chose did not answer": "Request failed: error
    sending request for url (http://worker/...)" (500)."""
    return _WORKER_UNREACHABLE.search(message) is not None


def is_constraint_message(message: str) -> bool:
    """A 400 about the output constraint: vLLM's "Grammar error: ...", "The provided JSON schema
    contains features not supported by xgrammar", "Invalid JSON grammar specification", ..."""
    return _CONSTRAINT_WORDS.search(message) is not None


def refuses_constraint(exc: BaseException) -> bool:
    """``exc`` is the server refusing the request's output constraint (and nothing else): a 400
    before the stream, or, when vLLM compiles the grammar after answering 200, in-band."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status: int | None = exc.status_code
    elif isinstance(exc, openai.APIError):
        status = in_band_status(exc.body)
    else:
        return False
    return status == 400 and is_constraint_message(error_message(exc.body, exc.message))


def in_band_status(body: Any) -> int | None:
    """The HTTP status an in-band SSE error event names (``{"code": 400, ...}``), if any."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    code = inner.get("code") if isinstance(inner, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return code if isinstance(code, int) and 400 <= code < 600 else None


def error_message(body: Any, fallback: str) -> str:
    """The human message from either vLLM error envelope, a bare string, or the fallback."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message")
            if isinstance(message, str) and message:
                return message
        elif isinstance(inner, str) and inner:
            return inner
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(body, str) and body:
        return body
    return fallback


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_RESOLUTION_WORDS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
    "getaddrinfo failed",
)


def _is_name_resolution(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(words in text for words in _RESOLUTION_WORDS)


def _transport_failure(exc: BaseException, endpoint: str) -> Failure | None:
    import httpx

    where = redact_url(endpoint)
    if isinstance(exc, httpx.ConnectTimeout):
        return Failure(
            FailureKind.CONNECT_TIMEOUT,
            ServerUnreachable(
                f"vLLM at {where} did not accept a connection within connect_timeout. "
                "Fix: check the host is up and reachable, or raise `connect_timeout`."
            ),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, httpx.ConnectError) and _is_name_resolution(exc):
        return Failure(
            FailureKind.UNKNOWN_HOST,
            ServerUnreachable(
                f"The host name in {where} does not resolve ({exc}). Fix: correct `base_url`, "
                "or use the server's IP address."
            ),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, httpx.ConnectError):
        return Failure(
            FailureKind.CONNECT_REFUSED,
            ServerUnreachable(
                f"Cannot connect to vLLM at {where} ({exc or 'connection refused'}). Fix: start "
                "the server (`saigen-vllm serve MODEL`, or wait while it loads) or correct "
                "`base_url`."
            ),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, httpx.PoolTimeout):
        return Failure(
            FailureKind.LOCAL_POOL,
            GenerationError(
                f"No free connection to {where} in this process within the pool timeout: too "
                "many requests at once for the client's connection pool (the server was not "
                "asked). Fix: lower the host's concurrency, or set `max_in_flight`."
            ),
            transient=True,
        )
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return Failure(
            FailureKind.STALL,
            ServerUnreachable(
                f"vLLM at {where} stopped sending data for longer than stall_timeout. "
                "Fix: check the server's log and load (`saigen-vllm doctor`), or raise "
                "`stall_timeout` if the server is busy."
            ),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return Failure(
            FailureKind.RESET,
            ServerUnreachable(f"The connection to vLLM at {where} broke mid-request ({exc})."),
            transient=True,
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, httpx.TransportError):
        return Failure(
            FailureKind.RESET,
            ServerUnreachable(f"Transport error talking to vLLM at {where}: {exc}"),
            transient=True,
            next_endpoint=True,
            trips_circuit=True,
        )
    return None


def _status_failure(
    status: int, message: str, headers: Any, endpoint: str, model: str | None, has_key: bool
) -> Failure:
    where = redact_url(endpoint)
    retry_after = parse_retry_after(headers)
    if status in (401, 403):
        text = (
            f"vLLM at {where} refused the configured API key ({status})."
            if has_key
            else f"vLLM at {where} requires an API key ({status})."
        )
        return Failure(
            FailureKind.UNAUTHORIZED,
            Unauthorized(text + " Fix: set `api_key` (or VLLM_API_KEY) to the server's --api-key."),
            status_code=status,
        )
    if status == 404:
        if "model" in message.lower():
            return Failure(
                FailureKind.MODEL_NOT_FOUND,
                ModelNotServed(
                    f"vLLM at {where}: {message} Fix: set `model` to a served name, or leave it "
                    "out to use the one served.",
                    model=model,
                    served=[],
                ),
                next_endpoint=True,
                status_code=status,
            )
        return Failure(
            FailureKind.WRONG_PATH,
            InvalidConfiguration(
                f"vLLM at {where} answered 404 for an OpenAI path ({message}). Fix: `base_url` "
                "must end in /v1, e.g. http://localhost:8000/v1.",
                field="base_url",
            ),
            next_endpoint=True,
            status_code=status,
        )
    if status == 400 and is_context_length_message(message):
        return Failure(
            FailureKind.CONTEXT_LENGTH,
            ContextLengthExceeded(
                f"vLLM at {where} refused the request: {message} Fix: lower `max_tokens`, or "
                "start the server with a larger --max-model-len."
            ),
            next_endpoint=True,
            status_code=status,
        )
    if status == 400 and is_constraint_message(message):
        return Failure(
            FailureKind.CONSTRAINT_REFUSED,
            ConstraintRefused(
                f"vLLM at {where} cannot constrain output to the requested schema or format: "
                f"{message} Fix: simplify the schema, or set `structured_output: json_object` "
                "(or `off`)."
            ),
            next_endpoint=True,  # another server may run another grammar backend
            status_code=status,
        )
    if status in (400, 422):
        return Failure(
            FailureKind.BAD_REQUEST,
            BadRequest(f"vLLM at {where} rejected the request ({status}): {message}"),
            status_code=status,
        )
    if status == 408:
        return Failure(
            FailureKind.REQUEST_TIMEOUT,
            GenerationError(f"vLLM at {where} timed out the request (408): {message}"),
            transient=True,
            retry_after=retry_after,
            status_code=status,
        )
    if status == 429:
        return Failure(
            FailureKind.RATE_LIMITED,
            Overloaded(f"vLLM at {where} (or a proxy) is rate limiting (429): {message}"),
            transient=True,
            next_endpoint=True,
            retry_after=retry_after,
            status_code=status,
        )
    unreachable: tuple[FailureKind, str] | None = None
    if status >= 500 and is_worker_unreachable_message(message):
        unreachable = (
            FailureKind.WORKER_FAILED,
            f"The router at {where} could not reach the worker it chose ({status}: {message}). "
            "Fix: check that worker (`saigen-vllm doctor` lists each one); the router stops "
            "choosing it once its health checks fail.",
        )
    elif status >= 500 and is_no_worker_message(message):
        unreachable = (
            FailureKind.NO_WORKER,
            f"The router at {where} has no worker to send the request to ({status}: {message}). "
            "Fix: start the vLLM servers behind it (`saigen-vllm doctor` lists each worker).",
        )
    elif status in (502, 503, 504):
        unreachable = (
            FailureKind.UNAVAILABLE,
            f"vLLM at {where} is unavailable ({status}): {message}",
        )
    if unreachable is not None:
        kind, text = unreachable
        return Failure(
            kind,
            ServerUnreachable(text),
            transient=True,
            next_endpoint=True,
            trips_circuit=True,
            retry_after=retry_after,
            status_code=status,
        )
    if status >= 500:
        return Failure(
            FailureKind.SERVER_ERROR,
            ServerError(f"vLLM at {where} failed ({status}): {message}"),
            transient=True,
            next_endpoint=True,
            trips_circuit=True,
            retry_after=retry_after,
            status_code=status,
        )
    return Failure(
        FailureKind.UNKNOWN,
        GenerationError(f"vLLM at {where} answered {status}: {message}"),
        status_code=status,
    )


def classify(
    exc: BaseException,
    *,
    endpoint: str,
    model: str | None = None,
    has_key: bool = False,
    timeout: float | None = None,
) -> Failure:
    """Map any exception raised while talking to ``endpoint`` to a :class:`Failure`."""
    where = redact_url(endpoint)
    if isinstance(exc, TruncatedOutput):
        return Failure(FailureKind.TRUNCATED, exc)
    if isinstance(exc, InvalidReply):
        return Failure(FailureKind.INVALID_REPLY, exc, transient=True)
    if isinstance(exc, (ModelNotServed, ContextLengthExceeded)):
        return Failure(
            FailureKind.MODEL_NOT_FOUND
            if isinstance(exc, ModelNotServed)
            else FailureKind.CONTEXT_LENGTH,
            exc,
            next_endpoint=True,
        )
    if isinstance(exc, LLMProviderError):
        return Failure(FailureKind.UNKNOWN, exc)
    if isinstance(exc, EngineUnresponsive):
        if exc.verdict is Verdict.DEAD:
            return Failure(
                FailureKind.ENGINE_DEAD,
                ServerUnreachable(
                    f"vLLM at {where} stopped answering /health while this request was in "
                    "flight: the engine is down. Fix: check the server's log and restart it "
                    "(`saigen-vllm doctor`)."
                ),
                next_endpoint=True,
                trips_circuit=True,
            )
        return Failure(
            FailureKind.ENGINE_HUNG,
            ServerUnreachable(
                f"vLLM at {where} made no progress for {exc.quiet_for:.0f}s (its token counters "
                "stood still and nothing was streamed) while this request waited: the engine "
                "is hung. Fix: check the server's log and restart it; raise `progress_timeout` "
                "if single steps (a huge prefill) really take that long."
            ),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, NoResponseHeaders):
        return Failure(
            FailureKind.STALL,
            ServerUnreachable(
                f"vLLM at {where} accepted the request but did not start answering within "
                "headers_timeout: the server is hung. Fix: check its log (`saigen-vllm doctor`), "
                "or raise `headers_timeout`."
            ),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return Failure(
            FailureKind.DEADLINE,
            GenerationError(
                f"vLLM at {where} did not finish the generation within timeout={timeout}s. "
                "Fix: raise `timeout`, lower `max_tokens`, or use a faster model/precision."
            ),
        )
    if isinstance(exc, StreamBroken):
        return Failure(
            FailureKind.STREAM_BROKEN,
            ServerUnreachable(f"vLLM at {where} closed the stream before finishing it."),
            transient=True,
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, json.JSONDecodeError):
        return Failure(
            FailureKind.MALFORMED,
            InvalidReply(f"vLLM at {where} sent a malformed reply: {exc}"),
            transient=True,
        )
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = error_message(exc.body, exc.message)
        return _status_failure(
            exc.status_code, message, exc.response.headers, endpoint, model, has_key
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        found = _transport_failure(cause, endpoint) if cause is not None else None
        if found is not None:
            return found
        return Failure(
            FailureKind.CONNECT_REFUSED,
            ServerUnreachable(f"Cannot reach vLLM at {where}: {exc}"),
            next_endpoint=True,
            trips_circuit=True,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return Failure(
            FailureKind.MALFORMED,
            InvalidReply(f"vLLM at {where} sent a reply of an unexpected shape: {exc}"),
            transient=True,
        )
    if isinstance(exc, openai.APIError):  # in-band SSE error event after a 200
        message = error_message(exc.body, exc.message)
        status = in_band_status(exc.body)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return _status_failure(status, message, None, endpoint, model, has_key)
        if is_context_length_message(message):
            return Failure(
                FailureKind.CONTEXT_LENGTH,
                ContextLengthExceeded(f"vLLM at {where}: {message}"),
                next_endpoint=True,
            )
        return Failure(
            FailureKind.STREAM_ERROR,
            ServerError(f"vLLM at {where} reported an error mid-stream: {message}"),
            transient=True,
        )
    found = _transport_failure(exc, endpoint)
    if found is not None:
        return found
    if isinstance(exc, ValueError):
        return Failure(
            FailureKind.MALFORMED,
            InvalidReply(f"vLLM at {where} sent an unparsable reply: {exc}"),
            transient=True,
        )
    return Failure(
        FailureKind.UNKNOWN,
        GenerationError(
            f"Unexpected error talking to vLLM at {where}: {type(exc).__name__}: {exc}"
        ),
    )
