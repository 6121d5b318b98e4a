"""A clock that runs with real time and can be moved on: tests skip a circuit breaker's cooldown
with ``clock.skip(seconds)`` instead of sleeping through it, while liveness watchers still see
time pass as it really does."""

from __future__ import annotations

import time


class SkippingClock:
    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds
