"""One object per server: its circuit breaker, its liveness watcher, what it serves (fetched
single-flight and cached), and how many requests it holds.

Everything the dispatcher and the client need to know about a server lives here, so that a
request's walk only asks its endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._circuit import CircuitBreaker
from ._liveness import Liveness, Observation, Verdict
from ._redact import redact_url

if TYPE_CHECKING:
    from ._transport import ServedModel, Transport
    from .settings import EndpointSpec, VLLMSettings


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
        self._served: list[ServedModel] | None = None
        self._fetching: asyncio.Task[list[ServedModel]] | None = None

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
        return self._served

    async def served_models(self, *, refresh: bool = False) -> list[ServedModel]:
        """``GET /v1/models``, cached; concurrent callers share one request in flight."""
        if self._served is not None and not refresh:
            return self._served
        task = self._fetching
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self.transport.models(self.url))
            self._fetching = task
        served = await asyncio.shield(task)
        self._served = served
        return served

    def forget(self) -> None:
        """The server may come back with other facts (another model, another context)."""
        self._served = None

    # -- health --------------------------------------------------------------------------------

    async def healthy(self) -> bool:
        """The half-open probe: ``GET /health`` answers 200."""
        try:
            return await self.transport.health(self.url) == 200
        except Exception:
            return False

    async def _observe(self) -> Observation:
        return await self.transport.observe(self.url)

    async def _verdict(self, verdict: Verdict) -> None:
        self.forget()
        if self._on_verdict is not None:
            await self._on_verdict(self, verdict)
