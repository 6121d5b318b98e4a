"""A circuit breaker per endpoint, safe under many concurrent requests.

closed --(N failures)--> open --(cooldown)--> half-open --(one /health probe)--> closed or open

- Every request takes a :class:`Ticket` when it is admitted; the ticket remembers the breaker's
  epoch (bumped on every transition). A failure counts only if its request was admitted in the
  current epoch: requests that were already in flight when the circuit opened do not re-open it,
  extend the cooldown or emit another event.
- Half-open admits a cheap probe (``/health``), never a whole generation, and only one at a time:
  :meth:`CircuitBreaker.probe` runs the probe once for every caller that arrives meanwhile, in its
  own task, so a caller cancelled mid-probe cannot leave the endpoint locked.
- Transitions are reported once: ``record_failure`` returns True only for closed/half-open -> open.
- The clock is injected, so tests move time instead of sleeping.

Small on purpose (docs/design.md says why no library is used); no I/O of its own: the caller
passes the probe.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class CircuitState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Ticket:
    """Proof of admission: the epoch a request was let through in."""

    epoch: int


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._epoch = 0
        self._probe: asyncio.Task[bool] | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state.value}, failures={self._failures})"

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def retry_in(self) -> float:
        """Seconds until an open circuit may be probed again (0 when not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def ticket(self) -> Ticket | None:
        """Admit a request now (closed only); ``None`` when open or waiting for its probe."""
        if self.state is CircuitState.CLOSED:
            return Ticket(self._epoch)
        return None

    async def probe(self, check: Callable[[], Awaitable[bool]]) -> tuple[Ticket | None, bool]:
        """Half-open: run ``check`` once for all callers; close on success, re-open on failure.

        Returns the ticket (``None`` when the circuit stays open) and whether this call's probe
        ran the probe (the caller reports the transition; exactly one caller sees True).
        """
        if self.state is CircuitState.CLOSED:
            return Ticket(self._epoch), False
        if self.state is CircuitState.OPEN:
            return None, False
        task = self._probe
        owner = task is None or task.done() or task.get_loop() is not asyncio.get_running_loop()
        if owner:
            epoch = self._epoch
            task = asyncio.ensure_future(self._run_probe(check, epoch))
            self._probe = task
        assert task is not None
        await asyncio.shield(task)
        return self.ticket(), owner

    async def _run_probe(self, check: Callable[[], Awaitable[bool]], epoch: int) -> bool:
        try:
            healthy = await check()
        except Exception:
            healthy = False
        if self._epoch == epoch:  # nobody else moved the state meanwhile
            if healthy:
                self._close()
            else:
                self._open()
        return healthy

    def record_success(self) -> bool:
        """A request succeeded. Returns True when this closed a circuit that was open."""
        self._failures = 0
        if self._opened_at is None:
            return False
        self._close()
        return True

    def record_failure(self, ticket: Ticket) -> bool:
        """A request admitted with ``ticket`` failed in a way that is the server's fault.

        Returns True only when this failure opened the circuit. Failures of requests admitted
        before the last transition are stale and ignored."""
        if ticket.epoch != self._epoch or self._opened_at is not None:
            return False
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()
            return True
        return False

    def trip(self) -> bool:
        """Open now (the endpoint's liveness watcher saw it hung or dead). True on a transition."""
        if self.state is CircuitState.OPEN:
            return False
        self._failures = max(self._failures, self.failure_threshold)
        self._open()
        return True

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._epoch += 1

    def _close(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._epoch += 1
