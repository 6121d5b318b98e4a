"""What does the provider add per request, against the bare openai SDK, in the same run?

Both stream the same short completion from the same server: by default the scripted loopback
server of the test suite (deterministic, so the difference is client-side work); with
SAIGEN_VLLM_TEST_SERVER (+ _KEY) set, a real vLLM server. The provider does more per request on
purpose: it counts the prompt with /tokenize to clamp max_tokens (one extra round trip), and
validates and assembles the reply. Prints medians and the ratio.

    python benchmarks/overhead.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fault_server import FaultServer, Ok

from saigen_vllm.provider import VLLMProvider

MESSAGES = [{"role": "user", "content": "Write saidata for nginx."}]


async def bare_sdk(base_url: str, key: str, model: str, n: int) -> list[float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key=key or "EMPTY", max_retries=0)
    samples = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            stream = await client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                max_tokens=64,
                temperature=0.0,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"min_tokens": 8},
            )
            text = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            assert text is not None
            samples.append(time.perf_counter() - started)
    finally:
        await client.close()
    return samples


async def provider(base_url: str, key: str, n: int) -> list[float]:
    p = VLLMProvider(
        {
            "base_url": base_url,
            "api_key": key or None,
            "max_tokens": 64,
            "temperature": 0.0,
            "extra_body": {"min_tokens": 8},
        }
    )
    samples = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            await p.complete(MESSAGES)
            samples.append(time.perf_counter() - started)
    finally:
        await p.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    n = args.requests
    external = os.environ.get("SAIGEN_VLLM_TEST_SERVER")
    key = os.environ.get("SAIGEN_VLLM_TEST_SERVER_KEY", "")
    server: Any = None
    if external:
        base_url, model, where = external, "tiny-llama", f"real vLLM at {external}"
    else:
        server = FaultServer().__enter__()
        server.script_chat(*[Ok() for _ in range(2 * n + 20)])
        base_url, model, where = server.base_url, server.model, "the scripted loopback server"
    try:
        asyncio.run(bare_sdk(base_url, key, model, 5))  # warm-up: imports, connections
        asyncio.run(provider(base_url, key, 5))
        sdk = asyncio.run(bare_sdk(base_url, key, model, n))
        ours = asyncio.run(provider(base_url, key, n))
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    sdk_ms, ours_ms = statistics.median(sdk) * 1000, statistics.median(ours) * 1000
    print(f"{n} sequential streamed completions against {where}, medians")
    print(f"bare openai SDK (stream, no checks)        {sdk_ms:8.2f} ms")
    print(f"saigen-vllm provider (tokenize + stream)   {ours_ms:8.2f} ms")
    print(f"ratio provider / bare SDK                  {ours_ms / sdk_ms:8.2f}")
    print(f"added per request                          {ours_ms - sdk_ms:8.2f} ms")


if __name__ == "__main__":
    main()
