"""Queued or hung? One watcher per endpoint judges a quiet stream by the server, not by a timer.

vLLM answers a streamed request with headers at once and then sends nothing while the request
waits for a slot, so a silent stream is as often *queued* as *hung*. While requests are in flight on
an endpoint, one watcher task polls its ``/health`` and ``/metrics`` (not one poll per request):

- ``/health`` failing (refused, 5xx, no answer)                                  -> **dead**
- progress = the server's token counters rising, or any chunk reaching us     -> alive
- no progress for ``progress_timeout`` while requests are in flight          -> **hung**
- a server without ``/metrics``: no progress for ``stall_timeout``            -> **hung**

A verdict abandons every request in flight on that endpoint (they fail over) and is reported once
through ``on_verdict``. The judgement (:meth:`Liveness.observe`) is a plain method with the clock
injected, so it is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Verdict(str, enum.Enum):
    ALIVE = "alive"
    HUNG = "hung"
    DEAD = "dead"


@dataclass(frozen=True)
class Observation:
    """One poll: was /health 200, and the server's progress counters (None: no /metrics)."""

    healthy: bool
    progress: float | None = None


class EngineUnresponsive(Exception):
    """The endpoint's watcher gave up on the requests in flight there."""

    def __init__(self, verdict: Verdict, quiet_for: float) -> None:
        super().__init__(f"{verdict.value} after {quiet_for:.1f}s without progress")
        self.verdict = verdict
        self.quiet_for = quiet_for


class Liveness:
    def __init__(
        self,
        *,
        progress_timeout: float,
        stall_timeout: float,
        observe: Callable[[], Awaitable[Observation]],
        on_verdict: Callable[[Verdict], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress_timeout = progress_timeout
        self.stall_timeout = stall_timeout
        self._poll = observe
        self.on_verdict = on_verdict
        self._clock = clock
        self.in_flight = 0
        self.last_progress = clock()
        self._counters: float | None = None
        self._has_metrics = False
        self._watcher: asyncio.Task[None] | None = None
        self._abandon: asyncio.Future[Verdict] | None = None

    @property
    def window(self) -> float:
        """How long no progress at all is tolerated while requests are in flight."""
        return self.progress_timeout if self._has_metrics else self.stall_timeout

    @property
    def poll_interval(self) -> float:
        return min(1.0, self.window / 5)

    def activity(self) -> None:
        """A chunk arrived from this endpoint: it is progressing."""
        self.last_progress = self._clock()

    def observe(self, observation: Observation) -> Verdict:
        """Fold one poll into what is known and judge the endpoint."""
        now = self._clock()
        if not observation.healthy:
            return Verdict.DEAD
        if observation.progress is not None:
            self._has_metrics = True
            if self._counters is not None and observation.progress != self._counters:
                self.last_progress = now
            self._counters = observation.progress
        if self.in_flight > 0 and now - self.last_progress > self.window:
            return Verdict.HUNG
        return Verdict.ALIVE

    async def watch(self, work: Awaitable[T], deadline: float | None = None) -> T:
        """Run ``work`` (one streamed request) until it ends, the endpoint is judged hung or
        dead (:class:`EngineUnresponsive`), or ``deadline`` seconds pass (``TimeoutError``)."""
        loop = asyncio.get_running_loop()
        if self.in_flight == 0:
            self.last_progress = self._clock()
        self.in_flight += 1
        if self._abandon is None or self._abandon.get_loop() is not loop or self._abandon.done():
            self._abandon = loop.create_future()
        abandon = self._abandon
        if self._watcher is None or self._watcher.done() or self._watcher.get_loop() is not loop:
            self._watcher = loop.create_task(self._run())
        task = asyncio.ensure_future(work)
        try:
            await asyncio.wait(
                (task, abandon), timeout=deadline, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            task.cancel()
            raise
        finally:
            self.in_flight -= 1
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait((task,))  # let it close its stream; its own error is not the outcome
        if not abandon.done():
            raise asyncio.TimeoutError(f"no reply within {deadline}s")
        raise EngineUnresponsive(abandon.result(), self._clock() - self.last_progress)

    async def _run(self) -> None:
        while self.in_flight > 0:
            await asyncio.sleep(self.poll_interval)
            if self.in_flight == 0:
                break
            try:
                observation = await self._poll()
            except Exception:
                observation = Observation(healthy=False)
            verdict = self.observe(observation)
            if verdict is Verdict.ALIVE:
                continue
            abandon, self._abandon = self._abandon, None
            if abandon is not None and not abandon.done():
                abandon.set_result(verdict)
            if self.on_verdict is not None:
                await self.on_verdict(verdict)
            self.last_progress = self._clock()
