"""A batch at full load against vLLM-shaped servers (tests/support/vllm_sim.py): queued is not
hung, a hung or dead engine is left within progress_timeout, several endpoints share the work,
admission holds requests in the client. Bounds on time are generous; nothing is timed for speed."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from saigen_vllm.hooks import CircuitEvent
from saigen_vllm.provider import VLLMProvider
from tests.support.clock import SkippingClock
from tests.support.fault_server import closed_port
from tests.support.vllm_sim import VLLMSim

MESSAGES = [{"role": "user", "content": "Write saidata for nginx."}]
QUICK = {"progress_timeout": 0.6, "stall_timeout": 0.6, "circuit_cooldown": 60, "max_retries": 0}


def batch(provider: VLLMProvider, n: int, concurrency: int) -> list[Any]:
    async def main() -> list[Any]:
        gate = asyncio.Semaphore(concurrency)  # as saigen's batch engine does

        async def one() -> Any:
            async with gate:
                return await provider.complete(MESSAGES)

        try:
            return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def failures(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


def test_queued_requests_never_fail_for_being_queued() -> None:
    # 2 slots, 16 at once: most wait far longer than stall_timeout without a byte
    with VLLMSim(slots=2, step=0.01, reply_tokens=20) as sim:
        provider = VLLMProvider({"base_url": sim.base_url, **QUICK, "stall_timeout": 0.05})
        results = batch(provider, 16, 16)
    assert failures(results) == []
    assert sim.finished == 16
    ttft = [r.metadata["time_to_first_token_s"] for r in results]
    assert max(ttft) > 10 * 0.05  # really queued, well past the old stall rule


def test_hung_engine_is_left_within_progress_timeout_and_nothing_is_lost() -> None:
    with VLLMSim(slots=8, step=0.01) as hung, VLLMSim(slots=8, step=0.01) as live:
        hung.freeze()  # /health 200, metrics frozen, streams silent
        provider = VLLMProvider({"base_url": hung.base_url, "endpoints": [live.base_url], **QUICK})
        events: list[CircuitEvent] = []
        provider.hooks.register("on_circuit_open", events.append)
        started = time.monotonic()
        results = batch(provider, 16, 16)
        elapsed = time.monotonic() - started
    assert failures(results) == []
    assert live.finished == 16 and hung.finished == 0
    assert elapsed < QUICK["progress_timeout"] + 3
    assert [e.endpoint for e in events] == [hung.base_url]  # one open event for one outage
    usage = provider.usage.summary()
    assert usage["requests_ok"] == 16 and usage["endpoints"][live.base_url]["requests_ok"] == 16


def test_dead_engine_is_left_at_the_next_health_poll() -> None:
    with VLLMSim(slots=8, step=0.01, reply_tokens=400) as dying, VLLMSim(step=0.01) as live:
        provider = VLLMProvider(
            {
                "base_url": dying.base_url,
                "endpoints": [live.base_url],
                **QUICK,
                "progress_timeout": 30,
            }
        )
        threading.Timer(0.3, dying.kill_engine).start()  # dies mid-stream: /health turns 503
        started = time.monotonic()
        results = batch(provider, 8, 8)
        elapsed = time.monotonic() - started
    assert failures(results) == []
    assert elapsed < 10  # well inside progress_timeout (30 s): /health said it
    assert dying.finished == 0 and live.finished == 8


def test_a_batch_over_dead_and_live_endpoints_loses_nothing() -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    with VLLMSim(step=0.005) as live:
        provider = VLLMProvider({"base_url": dead, "endpoints": [live.base_url], **QUICK})
        results = batch(provider, 32, 16)
    assert failures(results) == []
    assert live.finished == 32


def test_two_equal_endpoints_share_a_batch() -> None:
    with VLLMSim(slots=4, step=0.005) as a, VLLMSim(slots=4, step=0.005) as b:
        provider = VLLMProvider({"base_url": a.base_url, "endpoints": [b.base_url], **QUICK})
        results = batch(provider, 40, 16)
    assert failures(results) == []
    assert 16 <= a.finished <= 24 and a.finished + b.finished == 40


def test_ordered_routing_keeps_the_backup_idle() -> None:
    with VLLMSim(step=0.005) as a, VLLMSim(step=0.005) as b:
        provider = VLLMProvider(
            {"base_url": a.base_url, "endpoints": [b.base_url], "routing": "ordered", **QUICK}
        )
        batch(provider, 12, 6)
    assert (a.finished, b.finished) == (12, 0)


def test_max_in_flight_holds_requests_in_the_client() -> None:
    with VLLMSim(slots=8, step=0.005) as sim:
        provider = VLLMProvider({"base_url": sim.base_url, "max_in_flight": 3, **QUICK})
        results = batch(provider, 20, 20)
    assert failures(results) == []
    assert sim.peak_in_flight == 3


def test_one_models_request_for_a_cold_start_at_concurrency() -> None:
    with VLLMSim(step=0.005) as sim:
        provider = VLLMProvider({"base_url": sim.base_url, **QUICK})
        batch(provider, 32, 32)
    assert sim.count("/v1/models") == 1
    assert sim.count("/tokenize") == 0  # a short prompt fits by its byte bound


def test_circuit_closes_again_when_a_frozen_engine_resumes() -> None:
    clock = SkippingClock()
    with VLLMSim(step=0.005) as sim, VLLMSim(step=0.005) as other:
        provider = VLLMProvider(
            {
                "base_url": sim.base_url,
                "endpoints": [other.base_url],
                **QUICK,
                "circuit_cooldown": 30,
            },
            clock=clock,
        )
        names: list[str] = []
        provider.hooks.register("on_circuit_open", lambda e: names.append(e.name))
        provider.hooks.register("on_circuit_close", lambda e: names.append(e.name))
        sim.freeze()
        batch(provider, 4, 4)
        sim.thaw()
        clock.skip(30)  # the cooldown
        before = sim.finished
        batch(provider, 4, 4)
    assert names == ["on_circuit_open", "on_circuit_close"]
    assert sim.finished > before
