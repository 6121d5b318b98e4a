"""The one retry layer: a tenacity policy built from small pieces.

- retry only failures classified ``transient`` (never 400/401/403/404/422, truncation, deadline);
- wait: the server's ``Retry-After``/``retry-after-ms`` when sent, else exponential backoff with
  jitter (0.5 s doubling, at most 8 s);
- stop: after ``max_retries`` retries, or when the next wait would push the total time spent
  waiting past ``retry_max_delay`` (so a long Retry-After fails fast instead of sleeping).

The SDK's own retries are off; the host multiplies whatever happens here by its own attempts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ._failures import Failure

T = TypeVar("T")


class AttemptFailed(Exception):
    """Carries a classified failure through tenacity."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind.value)
        self.failure = failure


def _failure_of(state: RetryCallState) -> Failure | None:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return None
    exc = outcome.exception()
    return exc.failure if isinstance(exc, AttemptFailed) else None


class wait_retry_after(wait_base):
    """Use the server's Retry-After when the failure carries one, else ``fallback``."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = _failure_of(retry_state)
        if failure is not None and failure.retry_after is not None:
            return failure.retry_after
        return self.fallback(retry_state)


class stop_when_wait_budget_spent(stop_base):
    """Stop when the upcoming sleep would take total waiting past ``budget`` seconds."""

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        return retry_state.idle_for + upcoming > self.budget


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, AttemptFailed) and exc.failure.transient


@dataclass
class RetryStats:
    attempts: int = 0
    waited: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    max_delay: float
    initial_wait: float = 0.5
    max_wait: float = 8.0

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        stats: RetryStats,
        before_sleep: Callable[[int, float, Failure], Awaitable[None]] | None = None,
    ) -> T:
        """Run ``attempt`` (which raises :class:`AttemptFailed`) until success or give-up."""

        async def _before_sleep(state: RetryCallState) -> None:
            failure = _failure_of(state)
            if before_sleep is not None and failure is not None:
                await before_sleep(state.attempt_number, state.upcoming_sleep or 0.0, failure)

        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.max_retries + 1)
            | stop_when_wait_budget_spent(self.max_delay),
            wait=wait_retry_after(
                wait_exponential(multiplier=self.initial_wait, max=self.max_wait)
                + wait_random(0, self.initial_wait)
            ),
            before_sleep=_before_sleep,
            reraise=True,
        )
        try:
            async for attempt_state in retrying:
                with attempt_state:
                    stats.attempts += 1
                    return await attempt()
        finally:
            stats.waited += retrying.statistics.get("idle_for", 0.0)
        raise AssertionError("unreachable: tenacity either returns or re-raises")
