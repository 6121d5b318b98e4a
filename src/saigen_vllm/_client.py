"""The resilient client: a request's walk from the dispatcher to a finished completion.

dispatcher (admission, choice of endpoint) -> endpoint's circuit (half-open: one ``/health``
probe) -> plan (what the server serves, fetched single-flight; count the prompt only when a safe
bound may not fit; clamp ``max_tokens``) -> stream under the endpoint's liveness watcher -> refuse
truncated or empty output. An optional output constraint the server cannot compile (400) is
dropped for that server, once: the request goes again without it. Any failure is classified
once (:mod:`saigen_vllm._failures`) and the classification alone decides what happens next:
retry here (tenacity), another endpoint, give up.
Finished requests go to the usage ledger and the ``on_usage`` hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._circuit import Ticket
from ._dispatch import Dispatcher
from ._endpoint import Endpoint
from ._failures import Failure, FailureKind, classify, refuses_constraint
from ._liveness import Verdict
from ._redact import redact_url
from ._retrying import AttemptFailed, RetryPolicy, RetryStats
from ._transport import (
    Completion,
    ServedModel,
    Transport,
    require_content,
    without_reasoning,
)
from ._usage import UsageLedger, append_to_log
from .errors import CircuitOpen, ContextLengthExceeded, ModelNotServed
from .hooks import (
    CircuitEvent,
    EndpointFailedEvent,
    FallbackEvent,
    GiveUpEvent,
    Hooks,
    RetryEvent,
    UsageEvent,
)

if TYPE_CHECKING:
    from ._structured import Constraint
    from .settings import VLLMSettings

logger = logging.getLogger("saigen_vllm")

CHARS_PER_TOKEN_ESTIMATE = 3.0
"""Used only when the server cannot count tokens: 3 characters per token over-counts English
and YAML (BPE tokenizers average about 4), so the clamp errs on the side of fitting."""
MESSAGE_OVERHEAD_TOKENS = 8
TEMPLATE_OVERHEAD_TOKENS = 256
"""What a chat template may add around the messages (role markers, a default system text such as
gpt-oss's): generous, since it only decides whether the server is asked to count."""
TEMPLATE_OVERHEAD_PER_MESSAGE = 16


@dataclass
class GenerationResult:
    completion: Completion
    model: str
    max_tokens: int
    requested_max_tokens: int
    prompt_tokens_counted: int | None
    prompt_tokens_source: str
    max_model_len: int | None
    attempts: int
    retry_wait: float
    endpoints_tried: list[str] = field(default_factory=list)
    constraint: Constraint | None = None
    """The output constraint the reply was generated under (``None``: unconstrained)."""
    constraint_dropped: bool = False
    """An optional constraint was asked for but this server cannot compile it."""


@dataclass
class _Plan:
    model: str
    max_tokens: int
    prompt_tokens: int | None
    source: str
    max_model_len: int | None
    constraint: Constraint | None = None
    constraint_dropped: bool = False


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """When the server cannot count: ASCII text at ~3 characters a token, other text at its
    UTF-8 bytes (a safe bound: CJK is a token or more per character, never 1/3)."""
    estimate = 0.0
    for message in messages:
        text = message.get("content", "")
        if text.isascii():
            estimate += len(text) / CHARS_PER_TOKEN_ESTIMATE
            continue
        other = sum(len(ch.encode("utf-8")) for ch in text if not ch.isascii())
        estimate += (
            len(text) - sum(1 for ch in text if not ch.isascii())
        ) / CHARS_PER_TOKEN_ESTIMATE + other
    return int(estimate) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def prompt_token_bound(messages: list[dict[str, str]]) -> int:
    """A safe upper bound of the prompt's tokens without asking the server: a byte-level or
    byte-fallback tokenizer never makes more tokens than the text has UTF-8 bytes."""
    size = 0
    for message in messages:
        text = message.get("content", "")
        size += len(text) if text.isascii() else len(text.encode("utf-8"))
    return size + TEMPLATE_OVERHEAD_TOKENS + TEMPLATE_OVERHEAD_PER_MESSAGE * len(messages)


def pick_model(configured: str | None, served: list[ServedModel], endpoint: str) -> ServedModel:
    names = [item.id for item in served]
    where = redact_url(endpoint)
    if configured is None:
        roots = {item.root for item in served}
        if len(served) == 1 or (len(roots) == 1 and None not in roots):
            return served[0]  # one model, maybe under several names (aliases of one root)
        if not served:
            raise ModelNotServed(
                f"vLLM at {where} serves no model yet.",
                fix="wait until it has loaded (`saigen-vllm wait-ready`).",
                model=None,
                served=[],
            )
        raise ModelNotServed(
            f"vLLM at {where} serves several models ({', '.join(names)}); none is configured.",
            fix="set `model` to one of them.",
            model=None,
            served=names,
        )
    for item in served:
        if item.id == configured:
            return item
    raise ModelNotServed(
        f"vLLM at {where} does not serve model {configured!r}; it serves: "
        f"{', '.join(names) or '(nothing)'}.",
        fix="set `model` to one of those, or leave it out.",
        model=configured,
        served=names,
    )


class ResilientClient:
    def __init__(
        self,
        settings: VLLMSettings,
        hooks: Hooks,
        transport: Transport | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.hooks = hooks
        self.transport = transport or Transport(settings)
        self.policy = RetryPolicy(settings.max_retries, settings.retry_max_delay)
        self.endpoints = [
            Endpoint(spec, settings, self.transport, on_verdict=self._verdict, clock=clock)
            for spec in settings.endpoint_specs
        ]
        self.dispatcher = Dispatcher(self.endpoints, settings.routing_mode)
        self.usage = UsageLedger()
        self._clock = clock
        self._model_defaults: dict[str, dict[str, Any]] = {}

    def model_defaults(self, model: str) -> dict[str, Any]:
        """The catalog's request fields for ``model`` (thinking off for generation), looked up
        once per served name; the user's ``extra_body`` is laid over them."""
        found = self._model_defaults.get(model)
        if found is None:
            from .catalog import load_catalog

            found = self._model_defaults[model] = load_catalog().request_defaults(model)
        return found

    def __repr__(self) -> str:
        return f"ResilientClient(endpoints={[e.shown for e in self.endpoints]!r})"

    def endpoint(self, url: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.url == url:
                return endpoint
        raise KeyError(redact_url(url))

    # -- facts about a server, cached per endpoint ------------------------------------------

    async def served_models(self, url: str, *, refresh: bool = False) -> list[ServedModel]:
        return await self.endpoint(url).served_models(refresh=refresh)

    def known_max_model_len(self) -> int | None:
        """``max_model_len`` of the configured model on the first endpoint that reported it."""
        for endpoint in self.endpoints:
            for item in endpoint.served or ():
                if self.settings.model in (None, item.id) and item.max_model_len:
                    return item.max_model_len
        return None

    async def _plan(
        self, endpoint: Endpoint, messages: list[dict[str, str]], max_tokens: int
    ) -> _Plan:
        try:
            chosen = pick_model(self.settings.model, await endpoint.served_models(), endpoint.url)
        except ModelNotServed:
            served = await endpoint.served_models(refresh=True)
            chosen = pick_model(self.settings.model, served, endpoint.url)
        limit = chosen.max_model_len
        if limit is None:
            return _Plan(chosen.id, max_tokens, None, "none", None)
        bound = prompt_token_bound(messages)
        if bound + max_tokens <= limit:  # fits whatever the tokenizer: no need to count
            return _Plan(chosen.id, max_tokens, bound, "bound", limit)
        counted: int | None = None
        source = "server"
        try:
            counted = await self.transport.count_prompt_tokens(endpoint.url, chosen.id, messages)
        except Exception as exc:  # tokenize is optional; fall back to the estimate
            logger.debug("tokenize failed on %s: %s", endpoint.shown, exc)
        if counted is None:
            counted = estimate_prompt_tokens(messages)
            source = "estimate"
        room = limit - counted
        if room <= 0:
            raise ContextLengthExceeded(
                f"The prompt is {counted} tokens ({source} count) but model {chosen.id!r} at "
                f"{endpoint.shown} has max_model_len={limit}: it cannot fit, so it "
                "was not sent.",
                fix="start the server with a larger --max-model-len (see `saigen-vllm models`), "
                "or use a model with a longer context.",
                prompt_tokens=counted,
                max_tokens=max_tokens,
                max_model_len=limit,
            )
        if max_tokens > room:
            logger.info(
                "max_tokens %d clamped to %d: prompt %d + output must fit max_model_len %d",
                max_tokens,
                room,
                counted,
                limit,
            )
            max_tokens = room
        return _Plan(chosen.id, max_tokens, counted, source, limit)

    # -- one endpoint --------------------------------------------------------------------------

    async def _attempt(
        self,
        endpoint: Endpoint,
        messages: list[dict[str, str]],
        max_tokens: int,
        constraint: Constraint | None,
        plans: list[_Plan],
    ) -> Completion:
        model = self.settings.model
        try:
            plan = await self._plan(endpoint, messages, max_tokens)
            plans.append(plan)
            model = plan.model
            plan.constraint = constraint
            if constraint is not None and not endpoint.accepts(constraint):
                plan.constraint, plan.constraint_dropped = None, True
            try:
                completion = await self._stream(endpoint, plan, messages)
            except Exception as exc:
                if plan.constraint is None or not plan.constraint.optional:
                    raise
                if not refuses_constraint(exc):
                    raise
                if endpoint.refuse(plan.constraint.kind):
                    logger.warning(
                        "vLLM at %s cannot constrain output to the %s %s (%s): sending saidata "
                        "requests there unconstrained from now on",
                        endpoint.shown,
                        plan.constraint.source or "requested",
                        plan.constraint.kind,
                        exc,
                    )
                plan.constraint, plan.constraint_dropped = None, True
                completion = await self._stream(endpoint, plan, messages)
            completion = without_reasoning(completion, max_tokens=plan.max_tokens)
            constrained = plan.constraint is not None and plan.constraint.expects_json
            return require_content(
                completion,
                max_tokens=plan.max_tokens,
                # a server that ignores an optional constraint answers as the prompt asks
                expect_json=constrained
                and plan.constraint is not None
                and not plan.constraint.optional,
                json_constrained=constrained,
            )
        except Exception as exc:
            failure = classify(
                exc,
                endpoint=endpoint.url,
                model=model,
                has_key=self.settings.api_key is not None,
                timeout=self.settings.timeout,
                secret=self.settings.api_key_value(),
            )
            if endpoint.blames(failure) or failure.kind in (
                FailureKind.MODEL_NOT_FOUND,
                FailureKind.CONTEXT_LENGTH,
            ):
                endpoint.forget()  # the server may come back with other facts
            if failure.error is not exc:
                if type(exc).__module__.startswith("openai"):
                    # its text is the server's, raw (a key it echoed, escapes): the error
                    # carries that text made safe, and the raw one is not chained to it
                    failure.error.__suppress_context__ = True
                else:
                    failure.error.__cause__ = exc
            raise AttemptFailed(failure) from exc

    async def _stream(
        self, endpoint: Endpoint, plan: _Plan, messages: list[dict[str, str]]
    ) -> Completion:
        """One streamed request under the endpoint's liveness watcher."""
        response_format = structured_outputs = None
        if plan.constraint is not None:
            version = await endpoint.server_version()
            response_format, structured_outputs = plan.constraint.request_fields(version)
        self.transport.openai_client(endpoint.url)  # made (openai imported) before the watch
        return await endpoint.liveness.watch(
            self.transport.chat(
                endpoint.url,
                model=plan.model,
                messages=messages,
                max_tokens=plan.max_tokens,
                temperature=self.settings.temperature,
                response_format=response_format,
                structured_outputs=structured_outputs,
                model_defaults=self.model_defaults(plan.model),
                on_chunk=endpoint.liveness.activity,
            ),
            deadline=self.settings.timeout,
        )

    async def _admit(self, endpoint: Endpoint) -> Ticket | None:
        """A ticket through the endpoint's circuit; half-open runs its one /health probe."""
        ticket = endpoint.breaker.ticket()
        if ticket is not None:
            return ticket
        ticket, probed = await endpoint.breaker.probe(endpoint.healthy)
        if probed:
            name = "on_circuit_close" if ticket is not None else "on_circuit_open"
            await self._circuit_event(endpoint, name)
        return ticket

    # -- the whole walk ------------------------------------------------------------------------

    async def generate(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        constraint: Constraint | None = None,
    ) -> GenerationResult:
        requested = max_tokens or self.settings.max_tokens
        stats = RetryStats()
        tried: list[Endpoint] = []
        last: Failure | None = None
        last_endpoint: Endpoint | None = None
        started = self._clock()
        while True:
            endpoint = await self.dispatcher.acquire(exclude=tried)
            if endpoint is None:
                break
            try:
                tried.append(endpoint)
                ticket = await self._admit(endpoint)
                if ticket is None:
                    continue
                plans: list[_Plan] = []
                last_endpoint = endpoint

                async def before_sleep(
                    attempt: int, wait: float, failure: Failure, endpoint: Endpoint = endpoint
                ) -> None:
                    await self.hooks.emit(
                        RetryEvent(
                            endpoint.shown, attempt, wait, failure.kind.value, str(failure.error)
                        )
                    )

                async def attempt(
                    endpoint: Endpoint = endpoint, plans: list[_Plan] = plans
                ) -> Completion:
                    return await self._attempt(endpoint, messages, requested, constraint, plans)

                try:
                    completion = await self.policy.run(attempt, stats, before_sleep)
                except AttemptFailed as failed:
                    last = failed.failure
                    if endpoint.blames(last) and endpoint.breaker.record_failure(ticket):
                        await self._circuit_event(endpoint, "on_circuit_open")
                    await self.hooks.emit(
                        EndpointFailedEvent(
                            endpoint.shown, last.kind.value, str(last.error), stats.attempts
                        )
                    )
                    following = self.dispatcher.usable(exclude=tried)
                    if not last.next_endpoint or not following:
                        break
                    await self.hooks.emit(
                        FallbackEvent(endpoint.shown, following[0].shown, last.kind.value)
                    )
                    continue
                if endpoint.breaker.record_success():
                    await self._circuit_event(endpoint, "on_circuit_close")
            finally:
                self.dispatcher.release(endpoint)
            plan = plans[-1]
            await self._record_usage(endpoint.shown, plan.model, completion, None, started)
            return GenerationResult(
                completion=completion,
                model=plan.model,
                max_tokens=plan.max_tokens,
                requested_max_tokens=requested,
                prompt_tokens_counted=plan.prompt_tokens,
                prompt_tokens_source=plan.source,
                max_model_len=plan.max_model_len,
                attempts=stats.attempts,
                retry_wait=stats.waited,
                endpoints_tried=[e.shown for e in tried],
                constraint=plan.constraint,
                constraint_dropped=plan.constraint_dropped,
            )
        if last is None:
            cooling = [e for e in self.endpoints if e.breaker.retry_in() > 0] or self.endpoints
            waits = ", ".join(f"{e.shown} (retry in {e.breaker.retry_in():.0f}s)" for e in cooling)
            error: Exception = CircuitOpen(
                f"Every vLLM endpoint is cooling down after repeated failures: {waits}. Nothing "
                "was sent.",
                fix="run `saigen-vllm doctor` to see why the server is failing.",
            )
            kind = "circuit_open"
        else:
            error = last.error
            kind = last.kind.value
        shown = [e.shown for e in tried]
        await self.hooks.emit(GiveUpEvent(tuple(shown), kind, str(error), stats.attempts))
        where = last_endpoint.shown if last_endpoint is not None else "(none)"
        await self._record_usage(where, self.settings.model, None, kind, started)
        raise error

    # -- events --------------------------------------------------------------------------------

    async def _record_usage(
        self,
        endpoint: str,
        model: str | None,
        completion: Completion | None,
        kind: str | None,
        started: float,
    ) -> None:
        now = self._clock()
        event = UsageEvent(
            endpoint=endpoint,
            model=model,
            ok=completion is not None,
            prompt_tokens=completion.prompt_tokens if completion else None,
            completion_tokens=completion.completion_tokens if completion else None,
            time_to_first_token=completion.time_to_first_token if completion else None,
            latency=now - started,
            finished_at=now,
            kind=kind,
        )
        self.usage.record(event)
        if self.settings.usage_log is not None:
            try:
                append_to_log(self.settings.usage_log, event)
            except OSError as exc:
                logger.warning("cannot append to usage_log %s: %s", self.settings.usage_log, exc)
        if self.hooks.wants("on_usage"):
            await self.hooks.emit(event)

    async def _verdict(self, endpoint: Endpoint, verdict: Verdict) -> None:
        """The endpoint's watcher judged it hung or dead: open its circuit now, once."""
        logger.warning(
            "vLLM at %s is %s: requests in flight there move on", endpoint.shown, verdict.value
        )
        if endpoint.breaker.trip():
            await self._circuit_event(endpoint, "on_circuit_open")

    async def _circuit_event(self, endpoint: Endpoint, name: str) -> None:
        state = "open" if name == "on_circuit_open" else "closed"
        logger.warning("circuit for %s is now %s", endpoint.shown, state)
        breaker = endpoint.breaker
        await self.hooks.emit(
            CircuitEvent(endpoint.shown, state, breaker.failures, breaker.cooldown, name=name)
        )
