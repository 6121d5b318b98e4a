"""Batch throughput through the provider over 1, 2 and 4 equal endpoints.

A batch of N generations (default 192 at concurrency 64, as `saigen batch` runs them: gather
behind a semaphore) against vLLM-shaped simulators in their own processes, each with 8 slots, a
queue, and an engine step every 20 ms giving each running request one token (64 tokens a reply).
Baseline, in the same run: the same batch over one endpoint. Prints wall time, output tokens/s,
the ratio against one endpoint, and each endpoint's share of the requests.

    python benchmarks/throughput.py [--requests 192] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._servers import simulators

from saigen_vllm.provider import VLLMProvider

SLOTS, STEP, TOKENS = 8, 0.02, 64


async def run_batch(urls: list[str], n: int, concurrency: int) -> tuple[float, dict[str, int]]:
    provider = VLLMProvider({"base_url": urls[0], "endpoints": urls[1:], "max_tokens": 256})
    gate = asyncio.Semaphore(concurrency)
    served: dict[str, int] = dict.fromkeys(urls, 0)

    async def one(i: int) -> None:
        async with gate:
            response = await provider.complete([{"role": "user", "content": f"package {i}"}])
            served[response.metadata["endpoint"]] += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await provider.aclose()
    return time.perf_counter() - started, served


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=192)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    n, c = args.requests, args.concurrency
    print(
        f"{n} generations at concurrency {c}; each endpoint: {SLOTS} slots, a queue, "
        f"{STEP * 1000:.0f} ms per engine step, {TOKENS} tokens a reply"
    )
    print(f"{'endpoints':>10}{'wall s':>9}{'tok/s':>9}{'x one':>8}  share of requests")
    baseline = None
    for count in (1, 2, 4):
        with simulators(count, slots=SLOTS, step=STEP, reply_tokens=TOKENS) as urls:
            wall, served = asyncio.run(run_batch(urls, n, c))
        rate = n * TOKENS / wall
        baseline = baseline or rate
        shares = " ".join(f"{served[u] / n:.0%}" for u in urls)
        print(f"{count:>10}{wall:9.2f}{rate:9.0f}{rate / baseline:8.2f}  {shares}")


if __name__ == "__main__":
    main()
