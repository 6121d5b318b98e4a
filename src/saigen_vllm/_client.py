"""The resilient client: endpoints in order, a circuit per endpoint, one retry layer, hooks,
served-model detection and context-length safety, around :class:`~saigen_vllm._transport.Transport`.

A request walks: pick the next endpoint whose circuit lets it through (half-open: probe ``/health``
first) -> learn what it serves (cached) -> count the prompt -> clamp ``max_tokens`` -> stream the
completion -> refuse truncated or empty output. Any failure is classified once
(:mod:`saigen_vllm._failures`) and the classification alone decides what happens next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._circuit import CircuitBreaker, CircuitState
from ._failures import Failure, FailureKind, classify
from ._redact import redact_url
from ._retrying import AttemptFailed, RetryPolicy, RetryStats
from ._transport import Completion, ServedModel, Transport, require_content
from .errors import CircuitOpen, ContextLengthExceeded, ModelNotServed
from .hooks import (
    CircuitEvent,
    EndpointFailedEvent,
    FallbackEvent,
    GiveUpEvent,
    Hooks,
    RetryEvent,
)

if TYPE_CHECKING:
    from .settings import VLLMSettings

logger = logging.getLogger("saigen_vllm")

CHARS_PER_TOKEN_ESTIMATE = 3.0
"""Used only when the server cannot count tokens: 3 characters per token over-counts English
and YAML (BPE tokenizers average about 4), so the clamp errs on the side of fitting."""
MESSAGE_OVERHEAD_TOKENS = 8


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


@dataclass
class _Plan:
    model: str
    max_tokens: int
    prompt_tokens: int | None
    source: str
    max_model_len: int | None


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    chars = sum(len(message.get("content", "")) for message in messages)
    return int(chars / CHARS_PER_TOKEN_ESTIMATE) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def pick_model(configured: str | None, served: list[ServedModel], endpoint: str) -> ServedModel:
    names = [item.id for item in served]
    where = redact_url(endpoint)
    if configured is None:
        if len(served) == 1:
            return served[0]
        if not served:
            raise ModelNotServed(
                f"vLLM at {where} serves no model yet. Fix: wait until it has loaded "
                "(`saigen-vllm wait-ready`).",
                model=None,
                served=[],
            )
        raise ModelNotServed(
            f"vLLM at {where} serves several models ({', '.join(names)}); none is configured. "
            "Fix: set `model` to one of them.",
            model=None,
            served=names,
        )
    for item in served:
        if item.id == configured:
            return item
    raise ModelNotServed(
        f"vLLM at {where} does not serve model {configured!r}; it serves: "
        f"{', '.join(names) or '(nothing)'}. Fix: set `model` to one of those, or leave it out.",
        model=configured,
        served=names,
    )


class ResilientClient:
    def __init__(self, settings: VLLMSettings, hooks: Hooks, transport: Transport | None = None):
        self.settings = settings
        self.hooks = hooks
        self.transport = transport or Transport(settings)
        self.policy = RetryPolicy(settings.max_retries, settings.retry_max_delay)
        self.breakers = {
            url: CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_cooldown)
            for url in settings.endpoint_urls
        }
        self._served: dict[str, list[ServedModel]] = {}

    def __repr__(self) -> str:
        return f"ResilientClient(endpoints={[redact_url(u) for u in self.breakers]!r})"

    # -- facts about a server, cached per endpoint ------------------------------------------

    async def served_models(self, endpoint: str, *, refresh: bool = False) -> list[ServedModel]:
        if refresh or endpoint not in self._served:
            self._served[endpoint] = await self.transport.models(endpoint)
        return self._served[endpoint]

    def known_max_model_len(self) -> int | None:
        """``max_model_len`` of the configured model on the first endpoint that reported it."""
        for served in self._served.values():
            for item in served:
                if self.settings.model in (None, item.id) and item.max_model_len:
                    return item.max_model_len
        return None

    async def _plan(self, endpoint: str, messages: list[dict[str, str]], max_tokens: int) -> _Plan:
        try:
            chosen = pick_model(self.settings.model, await self.served_models(endpoint), endpoint)
        except ModelNotServed:
            chosen = pick_model(
                self.settings.model, await self.served_models(endpoint, refresh=True), endpoint
            )
        limit = chosen.max_model_len
        counted: int | None = None
        source = "none"
        if limit is not None:
            try:
                counted = await self.transport.count_prompt_tokens(endpoint, chosen.id, messages)
                source = "server" if counted is not None else "estimate"
            except Exception as exc:  # tokenize is optional; fall back to the estimate
                logger.debug("tokenize failed on %s: %s", redact_url(endpoint), exc)
                source = "estimate"
            if counted is None:
                counted = estimate_prompt_tokens(messages)
            room = limit - counted
            if room <= 0:
                raise ContextLengthExceeded(
                    f"The prompt is {counted} tokens ({source} count) but model {chosen.id!r} at "
                    f"{redact_url(endpoint)} has max_model_len={limit}: it cannot fit, so it "
                    "was not sent. Fix: start the server with a larger --max-model-len (see "
                    "`saigen-vllm models`), or use a model with a longer context.",
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
        endpoint: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        response_format: dict[str, Any] | None,
        plans: list[_Plan],
    ) -> Completion:
        model = self.settings.model
        try:
            plan = await self._plan(endpoint, messages, max_tokens)
            plans.append(plan)
            model = plan.model
            completion = await self.transport.chat(
                endpoint,
                model=plan.model,
                messages=messages,
                max_tokens=plan.max_tokens,
                temperature=self.settings.temperature,
                response_format=response_format,
            )
            return require_content(
                completion,
                max_tokens=plan.max_tokens,
                expect_json=response_format is not None
                and response_format.get("type") in ("json_object", "json_schema"),
            )
        except Exception as exc:
            failure = classify(
                exc,
                endpoint=endpoint,
                model=model,
                has_key=self.settings.api_key is not None,
                timeout=self.settings.timeout,
            )
            if failure.trips_circuit or failure.kind in (
                FailureKind.MODEL_NOT_FOUND,
                FailureKind.CONTEXT_LENGTH,
            ):
                self._served.pop(endpoint, None)  # the server may come back with other facts
            if failure.error is not exc:
                failure.error.__cause__ = exc
            raise AttemptFailed(failure) from exc

    async def _probe(self, endpoint: str) -> bool:
        try:
            return await self.transport.health(endpoint) == 200
        except Exception:
            return False

    # -- the whole walk ------------------------------------------------------------------------

    async def generate(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> GenerationResult:
        requested = max_tokens or self.settings.max_tokens
        stats = RetryStats()
        tried: list[str] = []
        last: Failure | None = None
        skipped: list[tuple[str, float]] = []
        endpoints = list(self.breakers)
        for index, endpoint in enumerate(endpoints):
            breaker = self.breakers[endpoint]
            state = breaker.try_acquire()
            if state is None:
                skipped.append((endpoint, breaker.retry_in()))
                continue
            if state is CircuitState.HALF_OPEN and not await self._probe(endpoint):
                if breaker.record_failure():
                    await self._circuit_event(endpoint, "on_circuit_open", breaker)
                skipped.append((endpoint, breaker.retry_in()))
                continue
            tried.append(endpoint)
            plans: list[_Plan] = []

            async def before_sleep(
                attempt: int, wait: float, failure: Failure, endpoint: str = endpoint
            ) -> None:
                await self.hooks.emit(
                    RetryEvent(
                        redact_url(endpoint), attempt, wait, failure.kind.value, str(failure.error)
                    )
                )

            async def attempt(endpoint: str = endpoint, plans: list[_Plan] = plans) -> Completion:
                return await self._attempt(endpoint, messages, requested, response_format, plans)

            try:
                completion = await self.policy.run(attempt, stats, before_sleep)
            except AttemptFailed as failed:
                last = failed.failure
                if last.trips_circuit:
                    if breaker.record_failure():
                        await self._circuit_event(endpoint, "on_circuit_open", breaker)
                else:
                    breaker.release()
                await self.hooks.emit(
                    EndpointFailedEvent(
                        redact_url(endpoint), last.kind.value, str(last.error), stats.attempts
                    )
                )
                following = [
                    e
                    for e in endpoints[index + 1 :]
                    if self.breakers[e].state is not CircuitState.OPEN
                ]
                if not last.next_endpoint or not following:
                    break
                await self.hooks.emit(
                    FallbackEvent(redact_url(endpoint), redact_url(following[0]), last.kind.value)
                )
                continue
            if breaker.record_success():
                await self._circuit_event(endpoint, "on_circuit_close", breaker)
            plan = plans[-1]
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
                endpoints_tried=[redact_url(e) for e in tried],
            )
        if last is None:
            waits = ", ".join(f"{redact_url(e)} (retry in {w:.0f}s)" for e, w in skipped)
            error: Exception = CircuitOpen(
                f"Every vLLM endpoint is cooling down after repeated failures: {waits}. Nothing "
                "was sent. Fix: run `saigen-vllm doctor` to see why the server is failing."
            )
            kind = "circuit_open"
        else:
            error = last.error
            kind = last.kind.value
        await self.hooks.emit(
            GiveUpEvent(tuple(redact_url(e) for e in tried), kind, str(error), stats.attempts)
        )
        raise error

    async def _circuit_event(self, endpoint: str, name: str, breaker: CircuitBreaker) -> None:
        state = "open" if name == "on_circuit_open" else "closed"
        logger.warning("circuit for %s is now %s", redact_url(endpoint), state)
        await self.hooks.emit(
            CircuitEvent(redact_url(endpoint), state, breaker.failures, breaker.cooldown, name=name)
        )
