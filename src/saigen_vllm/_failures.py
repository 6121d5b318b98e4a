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
from ._redact import redact_url, server_text
from ._transport import AnswerTooSlow, NoResponseHeaders, ResponseTooLarge, StreamBroken
from .errors import (
    BadRequest,
    ConstraintRefused,
    ContextLengthExceeded,
    Explained,
    InvalidConfiguration,
    InvalidReply,
    ModelNotServed,
    Overloaded,
    ProviderError,
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
    NO_HEADERS = "no_headers"  # a generation accepted, no response headers within headers_timeout
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
    RESPONSE_TOO_LARGE = "response_too_large"  # a body or stream line beyond the client's caps
    SLOW_ANSWER = "slow_answer"  # a server path did not answer in full within its deadline
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


# -- the table: what each kind of failure is, says, and decides ----------------------------------


@dataclass(frozen=True)
class Rule:
    """One row of the failure table. ``what`` and ``fix`` are ``str.format`` templates over the
    facts of the failure: ``where`` (the endpoint, redacted), ``status``, ``message`` (the
    server's words, made safe), ``detail`` (a local exception's words), ``timeout``, ``quiet``."""

    error: type[Explained]
    what: str
    fix: str | None = None
    transient: bool = False
    next_endpoint: bool = False
    trips_circuit: bool = False


_LOGS = "check the server's log and restart it (`saigen-vllm doctor`)."

RULES: dict[FailureKind, Rule] = {
    FailureKind.CONNECT_TIMEOUT: Rule(
        ServerUnreachable,
        "vLLM at {where} did not accept a connection within connect_timeout.",
        "check the host is up and reachable, or raise `connect_timeout`.",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.UNKNOWN_HOST: Rule(
        ServerUnreachable,
        "The host name in {where} does not resolve ({detail}).",
        "correct `base_url`, or use the server's IP address.",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.CONNECT_REFUSED: Rule(
        ServerUnreachable,
        "Cannot connect to vLLM at {where} ({detail}).",
        "start the server (`saigen-vllm serve MODEL`, or wait while it loads) or correct "
        "`base_url`.",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.LOCAL_POOL: Rule(
        ProviderError,
        "No free connection to {where} in this process within the pool timeout: too many "
        "requests at once for the client's connection pool (the server was not asked).",
        "lower the host's concurrency, or set `max_in_flight`.",
        transient=True,
    ),
    FailureKind.STALL: Rule(
        ServerUnreachable,
        "vLLM at {where} stopped sending data for longer than stall_timeout.",
        "check the server's log and load (`saigen-vllm doctor`), or raise `stall_timeout` if "
        "the server is busy.",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.NO_HEADERS: Rule(
        ServerUnreachable,
        "vLLM at {where} accepted the request but did not start answering within "
        "headers_timeout: the server is hung.",
        "check its log (`saigen-vllm doctor`), or raise `headers_timeout`.",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.RESET: Rule(
        ServerUnreachable,
        "The connection to vLLM at {where} broke mid-request ({detail}).",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.ENGINE_DEAD: Rule(
        ServerUnreachable,
        "vLLM at {where} stopped answering /health while this request was in flight: the "
        "engine is down.",
        _LOGS,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.ENGINE_HUNG: Rule(
        ServerUnreachable,
        "vLLM at {where} made no progress for {quiet:.0f}s (its token counters stood still and "
        "nothing was streamed) while this request waited: the engine is hung.",
        "check the server's log and restart it; raise `progress_timeout` if single steps (a "
        "huge prefill) really take that long.",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.STREAM_BROKEN: Rule(
        ServerUnreachable,
        "vLLM at {where} closed the stream before finishing it.",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.UNAVAILABLE: Rule(
        ServerUnreachable,
        "vLLM at {where} is unavailable ({status}): {message}",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.NO_WORKER: Rule(
        ServerUnreachable,
        "The router at {where} has no worker to send the request to ({status}: {message}).",
        "start the vLLM servers behind it (`saigen-vllm doctor` lists each worker).",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.WORKER_FAILED: Rule(
        ServerUnreachable,
        "The router at {where} could not reach the worker it chose ({status}: {message}).",
        "check that worker (`saigen-vllm doctor` lists each one); the router stops choosing it "
        "once its health checks fail.",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.SERVER_ERROR: Rule(
        ServerError,
        "vLLM at {where} failed ({status}): {message}",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.RATE_LIMITED: Rule(
        Overloaded,
        "vLLM at {where} (or a proxy) is rate limiting (429): {message}",
        transient=True,
        next_endpoint=True,
    ),
    FailureKind.REQUEST_TIMEOUT: Rule(
        ProviderError, "vLLM at {where} timed out the request (408): {message}", transient=True
    ),
    FailureKind.CONTEXT_LENGTH: Rule(
        ContextLengthExceeded,
        "vLLM at {where} refused the request: {message}",
        "lower `max_tokens`, or start the server with a larger --max-model-len.",
        next_endpoint=True,
    ),
    FailureKind.CONSTRAINT_REFUSED: Rule(
        ConstraintRefused,
        "vLLM at {where} cannot constrain output to the requested schema or format: {message}",
        "simplify the schema, or set `structured_output: json_object` (or `off`).",
        next_endpoint=True,  # another server may run another grammar backend
    ),
    FailureKind.BAD_REQUEST: Rule(
        BadRequest, "vLLM at {where} rejected the request ({status}): {message}"
    ),
    FailureKind.MODEL_NOT_FOUND: Rule(
        ModelNotServed,
        "vLLM at {where}: {message}",
        "set `model` to a served name, or leave it out to use the one served.",
        next_endpoint=True,
    ),
    FailureKind.WRONG_PATH: Rule(
        InvalidConfiguration,
        "vLLM at {where} answered 404 for an OpenAI path ({message}).",
        "`base_url` must end in /v1, e.g. http://localhost:8000/v1.",
        next_endpoint=True,
    ),
    FailureKind.UNAUTHORIZED: Rule(
        Unauthorized,
        "vLLM at {where} {refused} ({status}).",
        "set `api_key` (or VLLM_API_KEY) to the server's --api-key.",
    ),
    FailureKind.STREAM_ERROR: Rule(
        ServerError, "vLLM at {where} reported an error mid-stream: {message}", transient=True
    ),
    FailureKind.MALFORMED: Rule(
        InvalidReply, "vLLM at {where} sent a malformed reply: {detail}", transient=True
    ),
    FailureKind.DEADLINE: Rule(
        ProviderError,
        "vLLM at {where} did not finish the generation within timeout={timeout}s.",
        "raise `timeout`, lower `max_tokens`, or use a faster model/precision.",
    ),
    FailureKind.RESPONSE_TOO_LARGE: Rule(
        InvalidReply,
        "vLLM at {where} sent more than the client reads ({detail}): not a vLLM answer.",
        "check that `base_url` points at vLLM and not at another service.",
        transient=True,
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.SLOW_ANSWER: Rule(
        ServerUnreachable,
        "vLLM at {where} is too slow to answer: {detail}.",
        "check the server's load and log (`saigen-vllm doctor`).",
        next_endpoint=True,
        trips_circuit=True,
    ),
    FailureKind.UNKNOWN: Rule(
        ProviderError, "Unexpected error talking to vLLM at {where}: {detail}"
    ),
}

_EXTRA_FIELDS: dict[type[Explained], dict[str, Any]] = {
    ModelNotServed: {"model": None, "served": []},
    InvalidConfiguration: {"field": "base_url"},
}


def make_failure(
    kind: FailureKind,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    model: str | None = None,
    **facts: Any,
) -> Failure:
    """The :class:`Failure` of ``kind``, its error built from the table's row and ``facts``."""
    rule = RULES[kind]
    values = {"status": status, "message": "", "detail": "", **facts}
    extra = dict(_EXTRA_FIELDS.get(rule.error, {}))
    if "model" in extra:
        extra["model"] = model
    error = rule.error(
        rule.what.format(**values), fix=rule.fix.format(**values) if rule.fix else None, **extra
    )
    assert isinstance(error, LLMProviderError)  # every class in the table is a host error
    return Failure(
        kind,
        error,
        transient=rule.transient,
        next_endpoint=rule.next_endpoint,
        trips_circuit=rule.trips_circuit,
        retry_after=retry_after,
        status_code=status,
    )


def _transport_kind(exc: BaseException) -> FailureKind | None:
    import httpx

    if isinstance(exc, ResponseTooLarge):
        return FailureKind.RESPONSE_TOO_LARGE
    if isinstance(exc, httpx.ConnectTimeout):
        return FailureKind.CONNECT_TIMEOUT
    if isinstance(exc, httpx.ConnectError):
        return FailureKind.UNKNOWN_HOST if _is_name_resolution(exc) else FailureKind.CONNECT_REFUSED
    if isinstance(exc, httpx.PoolTimeout):
        return FailureKind.LOCAL_POOL
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return FailureKind.STALL
    if isinstance(exc, httpx.TransportError):
        return FailureKind.RESET
    return None


def _status_kind(status: int, message: str) -> FailureKind:
    """The kind of an HTTP error status, with the server's words where they decide it."""
    if status in (401, 403):
        return FailureKind.UNAUTHORIZED
    if status == 404:
        return FailureKind.MODEL_NOT_FOUND if "model" in message.lower() else FailureKind.WRONG_PATH
    if status == 400 and is_context_length_message(message):
        return FailureKind.CONTEXT_LENGTH
    if status == 400 and is_constraint_message(message):
        return FailureKind.CONSTRAINT_REFUSED
    if status in (400, 422):
        return FailureKind.BAD_REQUEST
    if status == 408:
        return FailureKind.REQUEST_TIMEOUT
    if status == 429:
        return FailureKind.RATE_LIMITED
    if status >= 500 and is_worker_unreachable_message(message):
        return FailureKind.WORKER_FAILED
    if status >= 500 and is_no_worker_message(message):
        return FailureKind.NO_WORKER
    if status in (502, 503, 504):
        return FailureKind.UNAVAILABLE
    if status >= 500:
        return FailureKind.SERVER_ERROR
    return FailureKind.UNKNOWN


_LOCAL_KINDS: tuple[tuple[type[BaseException], FailureKind], ...] = (
    (NoResponseHeaders, FailureKind.NO_HEADERS),
    (AnswerTooSlow, FailureKind.SLOW_ANSWER),
    (ResponseTooLarge, FailureKind.RESPONSE_TOO_LARGE),
    (StreamBroken, FailureKind.STREAM_BROKEN),
    (json.JSONDecodeError, FailureKind.MALFORMED),
)


def classify(
    exc: BaseException,
    *,
    endpoint: str,
    model: str | None = None,
    has_key: bool = False,
    timeout: float | None = None,
    secret: str | None = None,
) -> Failure:
    """Map any exception raised while talking to ``endpoint`` to a :class:`Failure`. Text from
    the server is made safe first (``secret``, the API key, redacted; control characters out;
    truncated)."""
    where = redact_url(endpoint)

    def safe(text: object) -> str:
        return server_text(text, secret)

    def failure(kind: FailureKind, **facts: Any) -> Failure:
        refused = "refused the configured API key" if has_key else "requires an API key"
        return make_failure(
            kind, where=where, model=model, timeout=timeout, refused=refused, **facts
        )

    if isinstance(exc, TruncatedOutput):
        return Failure(FailureKind.TRUNCATED, exc)
    if isinstance(exc, InvalidReply):
        return Failure(FailureKind.INVALID_REPLY, exc, transient=True)
    if isinstance(exc, ModelNotServed):
        return Failure(FailureKind.MODEL_NOT_FOUND, exc, next_endpoint=True)
    if isinstance(exc, ContextLengthExceeded):
        return Failure(FailureKind.CONTEXT_LENGTH, exc, next_endpoint=True)
    if isinstance(exc, LLMProviderError):
        return Failure(FailureKind.UNKNOWN, exc)
    if isinstance(exc, EngineUnresponsive):
        dead = exc.verdict is Verdict.DEAD
        return failure(
            FailureKind.ENGINE_DEAD if dead else FailureKind.ENGINE_HUNG, quiet=exc.quiet_for
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return failure(FailureKind.DEADLINE)
    for local, kind in _LOCAL_KINDS:
        if isinstance(exc, local):
            return failure(kind, detail=safe(exc))
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = safe(error_message(exc.body, exc.message))
        return failure(
            _status_kind(exc.status_code, message),
            status=exc.status_code,
            message=message,
            retry_after=parse_retry_after(exc.response.headers),
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        found = _transport_kind(cause) if cause is not None else None
        detail = safe(cause or exc) or "connection refused"
        return failure(found or FailureKind.CONNECT_REFUSED, detail=detail)
    if isinstance(exc, openai.APIResponseValidationError):
        return failure(FailureKind.MALFORMED, detail=safe(exc))
    if isinstance(exc, openai.APIError):  # in-band SSE error event after a 200
        message = safe(error_message(exc.body, exc.message))
        status = in_band_status(exc.body)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return failure(_status_kind(status, message), status=status, message=message)
        if is_context_length_message(message):
            return failure(FailureKind.CONTEXT_LENGTH, message=message)
        return failure(FailureKind.STREAM_ERROR, message=message)
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):  # our own requests (/v1/models, ...)
        response = exc.response
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        message = safe(error_message(body, response.reason_phrase))
        return failure(
            _status_kind(response.status_code, message),
            status=response.status_code,
            message=message,
            retry_after=parse_retry_after(response.headers),
        )
    transport_kind = _transport_kind(exc)
    if transport_kind is not None:
        return failure(transport_kind, detail=safe(exc) or "connection refused")
    if isinstance(exc, ValueError):
        return failure(FailureKind.MALFORMED, detail=safe(exc))
    return failure(FailureKind.UNKNOWN, detail=f"{type(exc).__name__}: {safe(exc)}")
