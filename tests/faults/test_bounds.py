"""Every network call is bounded in time (a deadline for the whole exchange, not a per-read
timeout a dripping server can renew forever) and in size (a body, a stream line)."""

from __future__ import annotations

import asyncio
import time

import pytest

from saigen_vllm._bounded import BODY_CAP, LINE_CAP
from saigen_vllm._host import GenerationContext
from saigen_vllm._transport import AnswerTooSlow, ResponseTooLarge, Transport
from saigen_vllm.errors import ConnectionError, GenerationError
from saigen_vllm.provider import VLLMProvider
from saigen_vllm.serve import wait_ready
from saigen_vllm.settings import load_settings
from tests.support.fault_server import Drip, FaultServer, Flood

QUICK = {"connect_timeout": 0.5, "stall_timeout": 1.0, "max_retries": 0}


def test_wait_ready_keeps_its_timeout_against_a_dripping_health(fault_server: FaultServer) -> None:
    fault_server.script("/health", *[Drip(every=0.2)] * 5)
    started = time.monotonic()
    ready, last = asyncio.run(wait_ready(fault_server.base_url, timeout=1.5))
    took = time.monotonic() - started
    assert not ready and ("time left" in last or "answer" in last)
    assert took < 1.5 + 1.0  # the timeout, not the drip, decides (it used to run for minutes)


def test_a_dripping_models_listing_is_bounded_by_the_generation_timeout(
    fault_server: FaultServer,
) -> None:
    fault_server.script("/v1/models", Drip(every=0.2))
    provider = VLLMProvider({"base_url": fault_server.base_url, **QUICK, "timeout": 1.0})
    started = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
    assert "too slow to answer" in str(caught.value)
    assert time.monotonic() - started < 0.5 + 1.0 + 1.0  # connect + timeout + slack


def test_health_answer_is_bounded_as_a_whole(fault_server: FaultServer) -> None:
    fault_server.script("/health", Drip(every=0.1))
    transport = Transport(load_settings({"base_url": fault_server.base_url, **QUICK}))

    async def probe() -> None:
        try:
            await transport.health(fault_server.base_url)
        finally:
            await transport.aclose()

    with pytest.raises(AnswerTooSlow):
        asyncio.run(probe())


@pytest.mark.parametrize("path", ["/metrics", "/v1/models"])
def test_a_huge_body_is_refused_not_buffered(fault_server: FaultServer, path: str) -> None:
    fault_server.script(path, Flood(BODY_CAP + (4 << 20)))
    transport = Transport(load_settings({"base_url": fault_server.base_url, **QUICK}))

    async def fetch() -> object:
        try:
            if path == "/metrics":
                return await transport.metrics(fault_server.base_url)
            return await transport.models(fault_server.base_url)
        finally:
            await transport.aclose()

    with pytest.raises(ResponseTooLarge, match="MiB"):
        asyncio.run(fetch())


def test_a_stream_line_without_end_is_refused(fault_server: FaultServer) -> None:
    fault_server.script_chat(Flood(LINE_CAP * 3, event_stream=True))
    provider = VLLMProvider(
        {"base_url": fault_server.base_url, **QUICK, "structured_output": "off", "timeout": 30}
    )
    with pytest.raises(GenerationError) as caught:
        asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
    assert "stream line over" in str(caught.value)
