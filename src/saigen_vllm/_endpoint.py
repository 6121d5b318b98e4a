"""One object per server: its circuit breaker, its liveness watcher, what it serves and which
version it runs (each fetched single-flight and cached), which output constraints it refused,
and how many requests it holds.

An endpoint may be a vllm-router in front of several vLLM workers (it answers ``GET /workers``).
Then "healthy" means some worker is healthy (the router's own ``/health`` is 503 as soon as any
one worker is down, while it still serves through the others), progress is the sum of the
workers' own ``/metrics`` counters (the router's ``/metrics`` is one worker's), and a model's
``max_model_len`` is the smallest any worker reports.

Everything the dispatcher and the client need to know about a server lives here, so that a
request's walk only asks its endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from ._circuit import CircuitBreaker
from ._liveness import Liveness, Observation, Verdict
from ._redact import redact_url

if TYPE_CHECKING:
    from ._failures import Failure
    from ._structured import Constraint
    from ._transport import ServedModel, Transport, Worker
    from .settings import EndpointSpec, VLLMSettings

logger = logging.getLogger("saigen_vllm")
T = TypeVar("T")
ROUTER_FAULTS = frozenset(
    {"connect_refused", "connect_timeout", "unknown_host", "no_worker", "engine_dead"}
)
"""Failure kinds that are a router's own (the others are one worker's)."""


class SingleFlight(Generic[T]):
    """A fact fetched once and cached; concurrent callers share the one request in flight, and a
    caller that is cancelled does not cancel it for the others."""

    def __init__(self, fetch: Callable[[], Awaitable[T]]) -> None:
        self._fetch = fetch
        self._value: tuple[T] | None = None
        self._task: asyncio.Future[T] | None = None

    @property
    def value(self) -> T | None:
        return self._value[0] if self._value is not None else None

    async def get(self, *, refresh: bool = False) -> T:
        if self._value is not None and not refresh:
            return self._value[0]
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._fetch())
            self._task = task
        value = await asyncio.shield(task)
        self._value = (value,)
        return value

    def forget(self) -> None:
        self._value = None


class Endpoint:
    def __init__(
        self,
        spec: EndpointSpec,
        settings: VLLMSettings,
        transport: Transport,
        *,
        on_verdict: Callable[[Endpoint, Verdict], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = spec.url
        self.shown = redact_url(spec.url)
        self.weight = spec.weight
        self.max_in_flight = spec.max_in_flight
        self.transport = transport
        self.in_flight = 0
        self.breaker = CircuitBreaker(
            settings.circuit_failure_threshold, settings.circuit_cooldown, clock=clock
        )
        self.liveness = Liveness(
            progress_timeout=settings.progress_timeout,
            stall_timeout=settings.stall_timeout,
            observe=self._observe,
            on_verdict=self._verdict,
            clock=clock,
        )
        self._on_verdict = on_verdict
        self._served = SingleFlight(self._fetch_served)
        self._version = SingleFlight(self._fetch_version)
        self._router = SingleFlight(self._detect_router)
        self.refused: set[str] = set()
        """Kinds of optional output constraint this server answered 400 to: not sent again."""

    def __repr__(self) -> str:
        return (
            f"Endpoint({self.shown!r}, in_flight={self.in_flight}, "
            f"circuit={self.breaker.state.value})"
        )

    @property
    def has_room(self) -> bool:
        return self.max_in_flight is None or self.in_flight < self.max_in_flight

    @property
    def load(self) -> float:
        """Requests in flight per unit of weight: the balanced dispatcher picks the lowest."""
        return self.in_flight / self.weight

    # -- facts ---------------------------------------------------------------------------------

    @property
    def served(self) -> list[ServedModel] | None:
        """What the server was last seen to serve (``None``: not asked yet)."""
        return self._served.value

    async def served_models(self, *, refresh: bool = False) -> list[ServedModel]:
        """``GET /v1/models``, cached."""
        return await self._served.get(refresh=refresh)

    async def _fetch_served(self) -> list[ServedModel]:
        """A server's ``/v1/models``; behind a router, its healthy workers' own (the router's
        ``/v1/models`` is one worker's, possibly a dead one), each model with the smallest
        ``max_model_len`` any worker reports."""
        if not await self.is_router():
            return await self.transport.models(self.url)
        found: dict[str, ServedModel] = {}
        for worker in await self._workers():
            if not worker.healthy:
                continue
            try:
                models = await self.transport.models(worker.url + "/v1")
            except Exception as exc:  # the router skips it too
                logger.debug("worker %s of %s: %s", worker.url, self.shown, exc)
                continue
            for model in models:
                known = found.get(model.id)
                if known is None or (
                    model.max_model_len is not None
                    and (known.max_model_len is None or model.max_model_len < known.max_model_len)
                ):
                    found[model.id] = model
        return list(found.values()) or await self.transport.models(self.url)

    async def is_router(self) -> bool:
        """The endpoint is a vllm-router (asked once; ``False`` while it cannot be asked)."""
        try:
            return await self._router.get()
        except Exception:
            return False

    async def _detect_router(self) -> bool:
        return await self.transport.workers(self.url) is not None

    async def _workers(self) -> list[Worker]:
        return await self.transport.workers(self.url) or []

    async def server_version(self) -> tuple[int, ...] | None:
        """The vLLM version from ``GET /version``, cached; ``None`` when it does not say."""
        return await self._version.get()

    async def _fetch_version(self) -> tuple[int, ...] | None:
        from ._structured import parse_version

        try:
            return parse_version(await self.transport.version(self.url))
        except Exception as exc:  # a proxy without /version: the portable request form
            logger.debug("GET /version failed on %s: %s", self.shown, exc)
            return None

    def blames(self, failure: Failure) -> bool:
        """Whether ``failure`` counts against this endpoint's circuit. Behind a router, a broken
        stream or a worker's 5xx is one worker's trouble (the router sends the retry elsewhere);
        only the router itself being unreachable, or having no worker, is the endpoint's."""
        if not failure.trips_circuit:
            return False
        if self._router.value:
            return failure.kind in ROUTER_FAULTS
        return True

    def accepts(self, constraint: Constraint) -> bool:
        """False for an optional constraint of a kind this server refused before."""
        return not (constraint.optional and constraint.kind in self.refused)

    def refuse(self, kind: str) -> bool:
        """Remember that this server refused an optional ``kind`` of constraint; True the first
        time (the one time it is worth a warning)."""
        first = kind not in self.refused
        self.refused.add(kind)
        return first

    def forget(self) -> None:
        """The server may come back with other facts (another model, context or version)."""
        self._served.forget()
        self._version.forget()

    # -- health --------------------------------------------------------------------------------

    async def healthy(self) -> bool:
        """The half-open probe: ``GET /health`` answers 200 (a router: some worker is healthy)."""
        try:
            if await self.is_router():
                return any(worker.healthy for worker in await self._workers())
            return await self.transport.health(self.url) == 200
        except Exception:
            return False

    async def _observe(self) -> Observation:
        if not await self.is_router():
            return await self.transport.observe(self.url)
        workers = [worker for worker in await self._workers() if worker.healthy]
        if not workers:
            return Observation(healthy=False)
        counters = await asyncio.gather(
            *(self.transport.worker_progress(worker) for worker in workers),
            return_exceptions=True,
        )
        values = [value for value in counters if isinstance(value, float)]
        return Observation(healthy=True, progress=sum(values) if values else None)

    async def _verdict(self, verdict: Verdict) -> None:
        self.forget()
        if self._on_verdict is not None:
            await self._on_verdict(self, verdict)
