"""Which endpoint serves the next request, and when: admission and choice.

- **balanced** (default with several endpoints): the endpoint with the fewest requests in flight
  per unit of weight among those whose circuit is not open; ties take turns.
- **ordered**: the first endpoint in the configured order that has room (primary, then backups).
- **admission**: an endpoint with ``max_in_flight`` takes no more than that; further requests wait
  here, in the client, with no timeout running, and go to whichever endpoint frees a slot first.

The dispatcher only counts and chooses; the client decides what a failure means.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from ._circuit import CircuitState
from ._endpoint import Endpoint


class Dispatcher:
    def __init__(self, endpoints: list[Endpoint], mode: str) -> None:
        if mode not in ("balanced", "ordered"):
            raise ValueError(f"unknown routing mode {mode!r}")
        self.endpoints = endpoints
        self.mode = mode
        self._turn = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return f"Dispatcher(mode={self.mode!r}, endpoints={self.endpoints!r})"

    @property
    def waiting(self) -> int:
        """Requests waiting in the client for a free slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def usable(self, exclude: Iterable[Endpoint] = ()) -> list[Endpoint]:
        """Endpoints a request may still go to: not excluded, circuit not open."""
        skip = set(map(id, exclude))
        return [
            e
            for e in self.endpoints
            if id(e) not in skip and e.breaker.state is not CircuitState.OPEN
        ]

    def choose(self, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        """The endpoint the next request would take now, without taking it."""
        free = [e for e in self.usable(exclude) if e.has_room]
        if not free:
            return None
        if self.mode == "ordered":
            return free[0]
        lowest = min(e.load for e in free)
        tied = [e for e in free if e.load == lowest]
        chosen = tied[self._turn % len(tied)]
        self._turn += 1
        return chosen

    async def acquire(self, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        """Take a slot on the best endpoint, waiting while every usable one is full.

        ``None`` when no endpoint is usable at all (all excluded or open)."""
        excluded = list(exclude)
        while True:
            if not self.usable(excluded):
                self._wake_one()  # the next waiter may have other options, or learn the same
                return None
            chosen = self.choose(excluded)
            if chosen is not None:
                chosen.in_flight += 1
                return chosen
            if any(e.has_room for e in self.endpoints):
                self._wake_one()  # a slot is free, but not for us: pass the turn on
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were handed a slot we will not use
                raise

    def release(self, endpoint: Endpoint) -> None:
        endpoint.in_flight -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
                return
