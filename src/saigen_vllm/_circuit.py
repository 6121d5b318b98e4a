"""A circuit breaker per endpoint: closed -> open after N transport failures -> half-open probe.

Small and synchronous on purpose: the state is a few numbers per endpoint that live as long as the
provider instance (across the host's event loops), and the half-open probe is an HTTP call that the
caller makes. See docs/design.md for why no library is used here.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class CircuitState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


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
        self._probing = False

    @property
    def failures(self) -> int:
        return self._failures

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

    def try_acquire(self) -> CircuitState | None:
        """May a request go to this endpoint now? Returns the state it goes in, or ``None``.

        In the half-open state only one caller at a time is let through as the probe.
        """
        state = self.state
        if state is CircuitState.CLOSED:
            return state
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return state
        return None

    def record_success(self) -> bool:
        """Returns True when this closed a circuit that was open."""
        was_open = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._probing = False
        return was_open

    def record_failure(self) -> bool:
        """Returns True when this failure opened (or re-opened) the circuit."""
        self._failures += 1
        if self._probing or self._failures >= self.failure_threshold:
            self._probing = False
            self._opened_at = self._clock()
            return True
        return False

    def release(self) -> None:
        """A probe that ended with neither success nor a transport failure."""
        self._probing = False
