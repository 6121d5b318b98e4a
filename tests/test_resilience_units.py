from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from saigen_vllm._failures import Failure, FailureKind, error_message, parse_retry_after
from saigen_vllm._retrying import AttemptFailed, RetryPolicy, RetryStats
from saigen_vllm.errors import ServerError
from saigen_vllm.hooks import GiveUpEvent, Hooks, RetryEvent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_http_date() -> None:
    import email.utils
    import time

    value = parse_retry_after(
        {"retry-after": email.utils.formatdate(time.time() + 30, usegmt=True)}
    )
    assert value is not None and 25 < value <= 31


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "nested"}}, "nested"),
        ({"object": "error", "message": "flat"}, "flat"),
        ({"error": "Unauthorized"}, "Unauthorized"),
        ("Unauthorized", "Unauthorized"),
        (None, "fallback"),
    ],
)
def test_error_envelopes(body: Any, message: str) -> None:
    assert error_message(body, "fallback") == message


def _failure(transient: bool, retry_after: float | None = None) -> AttemptFailed:
    return AttemptFailed(
        Failure(
            FailureKind.SERVER_ERROR, ServerError("x"), transient=transient, retry_after=retry_after
        )
    )


def test_policy_retries_transient_up_to_cap() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise _failure(True, retry_after=0.0)

    stats = RetryStats()
    with pytest.raises(AttemptFailed):
        asyncio.run(RetryPolicy(max_retries=3, max_delay=10).run(attempt, stats))
    assert calls == 4 and stats.attempts == 4


def test_policy_never_retries_permanent() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise _failure(False)

    with pytest.raises(AttemptFailed):
        asyncio.run(RetryPolicy(max_retries=3, max_delay=10).run(attempt, RetryStats()))
    assert calls == 1


def test_policy_stops_when_wait_budget_would_be_exceeded() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise _failure(True, retry_after=5.0)

    with pytest.raises(AttemptFailed):
        asyncio.run(RetryPolicy(max_retries=3, max_delay=2).run(attempt, RetryStats()))
    assert calls == 1


def test_failing_hook_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    seen: list[Any] = []

    def broken(event: Any) -> None:
        raise RuntimeError("hook bug")

    async def async_hook(event: Any) -> None:
        seen.append(event)

    hooks.register("on_retry", broken)
    hooks.register("on_retry", async_hook)
    event = RetryEvent("http://h/v1", 1, 0.5, "unavailable", "503")
    with caplog.at_level(logging.ERROR, logger="saigen_vllm.hooks"):
        asyncio.run(hooks.emit(event))
    assert seen == [event]
    assert "hook bug" in caplog.text
    errors = len(caplog.records)
    asyncio.run(hooks.emit(GiveUpEvent(("a",), "k", "m", 1)))  # no handler for on_giveup
    assert seen == [event] and len(caplog.records) == errors  # none ran, nothing failed


def test_unknown_hook_name() -> None:
    with pytest.raises(ValueError, match="on_retry"):
        Hooks().register("on_nothing", print)


def test_unresolvable_host_is_named_as_such() -> None:
    import httpx

    from saigen_vllm._failures import classify

    error = httpx.ConnectError("[Errno -2] Name or service not known")
    failure = classify(error, endpoint="http://gb10.invalid:8000/v1")
    assert failure.kind is FailureKind.UNKNOWN_HOST
    assert "does not resolve" in str(failure.error) and "base_url" in str(failure.error)
    refused = classify(httpx.ConnectError("[Errno 111] Connection refused"), endpoint="http://h/v1")
    assert refused.kind is FailureKind.CONNECT_REFUSED


def test_pool_exhaustion_is_not_the_servers_fault() -> None:
    import httpx

    from saigen_vllm._failures import classify

    failure = classify(httpx.PoolTimeout("no connection"), endpoint="http://h/v1")
    assert failure.kind is FailureKind.LOCAL_POOL
    assert not failure.trips_circuit and not failure.next_endpoint and failure.transient
    assert "server was not asked" in str(failure.error)


def test_metrics_aggregate_per_kind_across_engines() -> None:
    """Two data-parallel engines: counters and request counts add up; KV-cache usage (a
    fraction) is per engine, reported as the highest, never summed past 100 %."""
    from saigen_vllm._transport import parse_metrics

    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="m"} 3.0\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 5.0\n'
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.6\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.55\n'
        "# TYPE vllm:generation_tokens counter\n"
        'vllm:generation_tokens_total{engine="0",model_name="m"} 100.0\n'
        'vllm:generation_tokens_total{engine="1",model_name="m"} 50.0\n'
    )
    data = parse_metrics(text)
    assert data.requests_running == 8
    assert data.kv_cache_usage == 0.6
    assert data.per_engine["vllm:kv_cache_usage_perc"] == [0.6, 0.55]
    assert data.generation_tokens_total == 150
