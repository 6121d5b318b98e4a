"""The rooms that carry a batch: circuit breaker, liveness judgement, dispatcher, usage ledger.

Time is injected (``Clock``); nothing here sleeps. Concurrency is real asyncio."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from saigen_vllm._circuit import CircuitBreaker, CircuitState
from saigen_vllm._dispatch import Dispatcher
from saigen_vllm._endpoint import Endpoint
from saigen_vllm._liveness import EngineUnresponsive, Liveness, Observation, Verdict
from saigen_vllm._usage import UsageLedger, append_to_log, percentile
from saigen_vllm.hooks import UsageEvent
from saigen_vllm.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- circuit breaker ------------------------------------------------------------------------------


def test_circuit_opens_once_after_threshold_and_ignores_stale_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown=10, clock=clock)
    tickets = [breaker.ticket() for _ in range(20)]  # 20 requests in flight
    assert all(t is not None for t in tickets)
    opened = [breaker.record_failure(t) for t in tickets if t is not None]
    assert opened.count(True) == 1  # one transition, one event, for 20 failures
    assert breaker.state is CircuitState.OPEN and breaker.ticket() is None
    clock.now = 9
    assert breaker.retry_in() == 1  # the 18 late failures did not extend the cooldown


def _half_open() -> tuple[Clock, CircuitBreaker]:
    """A breaker opened by one failure, its cooldown just over."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=10, clock=clock)
    ticket = breaker.ticket()
    assert ticket is not None and breaker.record_failure(ticket)
    clock.now = 10
    assert breaker.state is CircuitState.HALF_OPEN
    return clock, breaker


def test_half_open_runs_one_health_probe_for_every_caller_and_closes() -> None:
    _, breaker = _half_open()
    probes = 0

    async def healthy() -> bool:
        nonlocal probes
        probes += 1
        await asyncio.sleep(0)
        return True

    async def main() -> list[Any]:
        return await asyncio.gather(*(breaker.probe(healthy) for _ in range(8)))

    results = asyncio.run(main())
    assert probes == 1
    assert all(ticket is not None for ticket, _ in results)  # nobody was refused meanwhile
    assert [owner for _, owner in results].count(True) == 1  # one close event
    assert breaker.state is CircuitState.CLOSED


def test_failed_probe_reopens_and_a_cancelled_prober_does_not_lock_the_endpoint() -> None:
    clock, breaker = _half_open()
    release = asyncio.Event()

    async def slow_unhealthy() -> bool:
        await release.wait()
        return False

    async def main() -> None:
        prober = asyncio.ensure_future(breaker.probe(slow_unhealthy))
        await asyncio.sleep(0)
        prober.cancel()  # the host cancels the request that was probing
        release.set()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)  # the probe runs to its end

    asyncio.run(main())
    assert breaker.state is CircuitState.OPEN  # the probe finished on its own and re-opened
    clock.now = 20

    async def ok() -> bool:
        return True

    ticket, owner = asyncio.run(breaker.probe(ok))
    assert ticket is not None and owner and breaker.state is CircuitState.CLOSED


def test_trip_opens_at_once_and_only_reports_the_transition() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=5, cooldown=10, clock=clock)
    ticket = breaker.ticket()
    assert breaker.trip() is True and breaker.trip() is False
    assert ticket is not None and breaker.record_failure(ticket) is False  # admitted before
    assert breaker.record_success() is True and breaker.state is CircuitState.CLOSED


# -- liveness -------------------------------------------------------------------------------------


def _liveness(clock: Clock, **kw: Any) -> Liveness:
    async def never() -> Observation:
        raise AssertionError("not polled in these tests")

    return Liveness(
        progress_timeout=kw.get("progress_timeout", 15),
        stall_timeout=kw.get("stall_timeout", 90),
        observe=never,
        clock=clock,
    )


def test_queued_requests_are_alive_while_the_server_makes_progress() -> None:
    clock = Clock()
    live = _liveness(clock)
    live.in_flight = 12  # most of them queued behind 2 slots: silent streams
    counter = 100.0
    for _ in range(60):  # a minute of silence for us, but tokens rise on the server
        clock.now += 1
        counter += 7
        assert live.observe(Observation(True, counter)) is Verdict.ALIVE


def test_no_progress_for_progress_timeout_is_hung() -> None:
    clock = Clock()
    live = _liveness(clock)
    live.in_flight = 3
    assert live.observe(Observation(True, 50.0)) is Verdict.ALIVE
    clock.now = 15
    assert live.observe(Observation(True, 50.0)) is Verdict.ALIVE
    clock.now = 15.5
    assert live.observe(Observation(True, 50.0)) is Verdict.HUNG


def test_chunks_reaching_the_client_count_as_progress() -> None:
    clock = Clock()
    live = _liveness(clock)
    live.in_flight = 1
    live.observe(Observation(True, 50.0))
    clock.now = 14
    live.activity()
    clock.now = 28
    assert live.observe(Observation(True, 50.0)) is Verdict.ALIVE


def test_failing_health_is_dead_and_idle_is_never_hung() -> None:
    clock = Clock()
    live = _liveness(clock)
    assert live.observe(Observation(False)) is Verdict.DEAD
    clock.now = 1000
    assert live.observe(Observation(True, 1.0)) is Verdict.ALIVE  # nothing in flight


def test_without_metrics_the_window_is_stall_timeout() -> None:
    clock = Clock()
    live = _liveness(clock, stall_timeout=40)
    live.in_flight = 1
    clock.now = 30
    assert live.observe(Observation(True, None)) is Verdict.ALIVE
    assert live.window == 40
    clock.now = 41
    assert live.observe(Observation(True, None)) is Verdict.HUNG


def test_watch_abandons_work_on_a_verdict_and_closes_it() -> None:
    polls: list[int] = []

    async def observe() -> Observation:
        polls.append(1)
        return Observation(False)

    verdicts: list[Verdict] = []

    async def on_verdict(v: Verdict) -> None:
        verdicts.append(v)

    live = Liveness(
        progress_timeout=0.05, stall_timeout=0.05, observe=observe, on_verdict=on_verdict
    )
    closed = asyncio.Event()

    async def stream() -> str:
        try:
            await asyncio.Event().wait()
        finally:
            closed.set()
        return "never"

    async def main() -> None:
        results = await asyncio.gather(
            *(live.watch(stream()) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, EngineUnresponsive) for r in results)
        assert closed.is_set()

    asyncio.run(main())
    assert verdicts == [Verdict.DEAD]  # one verdict for the five requests
    assert len(polls) == 1  # one watcher, not one poll per request
    assert live.in_flight == 0


# -- dispatcher -----------------------------------------------------------------------------------


def _endpoints(*urls: str, **config: Any) -> list[Endpoint]:
    settings = load_settings({"base_url": urls[0], "endpoints": list(urls[1:]), **config})
    return [Endpoint(spec, settings, transport=None) for spec in settings.endpoint_specs]  # type: ignore[arg-type]


def test_balanced_sends_to_the_fewest_in_flight_and_rotates_ties() -> None:
    a, b = _endpoints("http://a:1/v1", "http://b:1/v1")
    dispatcher = Dispatcher([a, b], "balanced")

    async def main() -> list[str]:
        return [(await dispatcher.acquire()).url for _ in range(6)]  # type: ignore[union-attr]

    chosen = asyncio.run(main())
    assert chosen.count(a.url) == 3 and chosen.count(b.url) == 3
    assert (a.in_flight, b.in_flight) == (3, 3)


def test_weights_share_the_load() -> None:
    a, b = _endpoints("http://a:1/v1", {"url": "http://b:1/v1", "weight": 3})  # type: ignore[arg-type]
    dispatcher = Dispatcher([a, b], "balanced")

    async def main() -> None:
        for _ in range(8):
            await dispatcher.acquire()

    asyncio.run(main())
    assert (a.in_flight, b.in_flight) == (2, 6)


def test_ordered_fills_the_primary_then_overflows_to_the_backup() -> None:
    a, b = _endpoints("http://a:1/v1", "http://b:1/v1", max_in_flight=2)
    dispatcher = Dispatcher([a, b], "ordered")

    async def main() -> list[str]:
        return [(await dispatcher.acquire()).url for _ in range(4)]  # type: ignore[union-attr]

    assert asyncio.run(main()) == [a.url, a.url, b.url, b.url]


def test_requests_beyond_max_in_flight_wait_and_take_the_first_freed_slot() -> None:
    a, b = _endpoints("http://a:1/v1", "http://b:1/v1", max_in_flight=1)
    dispatcher = Dispatcher([a, b], "balanced")

    async def main() -> None:
        first, second = await dispatcher.acquire(), await dispatcher.acquire()
        assert first is a and second is b
        third = asyncio.ensure_future(dispatcher.acquire())
        await asyncio.sleep(0)
        assert not third.done() and dispatcher.waiting == 1
        dispatcher.release(b)
        assert await third is b

    asyncio.run(main())


def test_waiters_learn_when_no_endpoint_is_usable_any_more() -> None:
    (a,) = _endpoints("http://a:1/v1", max_in_flight=1, circuit_failure_threshold=1)
    dispatcher = Dispatcher([a], "balanced")

    async def main() -> list[Any]:
        await dispatcher.acquire()
        waiters = [asyncio.ensure_future(dispatcher.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        a.breaker.trip()
        dispatcher.release(a)
        return await asyncio.gather(*waiters)

    assert asyncio.run(main()) == [None, None, None]


# -- usage ledger ---------------------------------------------------------------------------------


def _event(endpoint: str, ok: bool = True, ttft: float = 0.5, at: float = 10.0) -> UsageEvent:
    return UsageEvent(endpoint, "m", ok, 1000 if ok else None, 200 if ok else None, ttft, 4.0, at)


def test_ledger_totals_per_endpoint_percentiles_and_saving(tmp_path: Path) -> None:
    ledger = UsageLedger()
    for i in range(10):
        ledger.record(
            _event("http://a/v1" if i % 2 else "http://b/v1", ttft=0.1 * (i + 1), at=10 + i)
        )
    ledger.record(_event("http://a/v1", ok=False, at=20))
    report = ledger.summary(input_price=0.5, output_price=2.0)
    assert (report["requests_ok"], report["requests_failed"]) == (10, 1)
    assert report["prompt_tokens"] == 10_000 and report["completion_tokens"] == 2_000
    assert report["endpoints"]["http://a/v1"]["requests_failed"] == 1
    assert report["time_to_first_token_s"]["p50"] == pytest.approx(0.5)
    assert report["time_to_first_token_s"]["p90"] == pytest.approx(0.9)
    assert report["wall_seconds"] == pytest.approx(20 - 6)  # first start 10-4, last end 20
    assert report["estimated_saving_usd"] == pytest.approx((10_000 * 0.5 + 2_000 * 2.0) / 1e6)
    log = tmp_path / "usage.jsonl"
    for i in range(3):
        append_to_log(log, _event("http://a/v1", at=i))
    again = UsageLedger.from_log(log)
    assert again.total.requests_ok == 3 and json.loads(log.read_text().splitlines()[0])["ok"]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(range(1, 101), 99) == 99


def test_the_fallback_estimate_does_not_undercount_cjk() -> None:
    from saigen_vllm._client import estimate_prompt_tokens, prompt_token_bound

    cjk = [{"role": "user", "content": "软件包的安装与配置" * 100}]  # 900 characters, 2700 bytes
    ascii_text = [{"role": "user", "content": "install and configure " * 100}]
    assert estimate_prompt_tokens(cjk) >= 2700  # a token or more per character, not 300
    assert estimate_prompt_tokens(cjk) <= prompt_token_bound(cjk)
    assert estimate_prompt_tokens(ascii_text) < 1000  # ASCII stays at ~3 characters a token
