"""Concurrent generations from one provider are decoded in one vLLM batch. On a server of its
own (fresh, so nothing of earlier tests is cached or queued there), run once per CI run."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from saigen_vllm._transport import Transport
from saigen_vllm.provider import VLLMProvider
from tests.integration.conftest import RunningServer, require_vllm_cpu
from tests.support import vllm_server

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        os.environ.get("SAIGEN_VLLM_SERVER_ONCE") == "0",
        reason="server-only tests run once per CI run, in its first environment",
    ),
]


@pytest.fixture(scope="module")
def fresh(vllm: RunningServer) -> Iterator[vllm_server.VLLMServer]:
    require_vllm_cpu()
    server = vllm_server.start_server(api_key=vllm.api_key)
    try:
        yield server
    finally:
        server.stop()


def test_concurrent_requests_are_batched(
    fresh: vllm_server.VLLMServer, vllm: RunningServer
) -> None:
    """8 packages at once: vLLM's engine-step histogram counts far fewer steps than tokens
    generated (one request at a time takes a step per token, plus its prefill)."""
    config = {**vllm.config(max_tokens=300, extra_body={"min_tokens": 240}),
              "base_url": fresh.base_url}  # fmt: skip
    provider = VLLMProvider(config)
    transport = Transport(provider.settings)
    run_id = uuid.uuid4().hex
    prompts = [
        [{"role": "user", "content": f"{run_id}-{i}: write saidata for package {i}."}]
        for i in range(8)
    ]

    async def go() -> tuple[list[Any], Any, Any]:
        before = await transport.metrics(fresh.base_url)
        results = await asyncio.gather(*(provider.complete(p) for p in prompts))
        after = await transport.metrics(fresh.base_url)
        await provider.aclose()
        await transport.aclose()
        return results, before, after

    results, before, after = asyncio.run(go())
    assert len({r.metadata["request_id"] for r in results}) == 8
    assert all(r.metadata["completion_tokens"] == 241 for r in results)  # 240, then EOS
    steps_name = "vllm:iteration_tokens_total_count"
    steps = after.samples[steps_name] - before.samples[steps_name]
    generated = after.generation_tokens_total - before.generation_tokens_total
    assert generated == 8 * 241
    assert steps * 2 <= generated, (steps, generated)
