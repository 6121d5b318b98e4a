"""What does the provider cost per request at the concurrency saigen batches run at?

N generations at concurrency C (default 2,000 at 64) of saigen's rendered generation prompt,
streamed from a vLLM-shaped simulator in its own process (no queue: every request runs at once,
8 tokens each), measured three ways in one run:

- bare SDK: streaming ``AsyncOpenAI`` (max_retries=0), the prompt rendered once beforehand;
- upstream design: the host renders its template per request (as saigen's in-tree provider does),
  then the same bare streaming SDK call;
- saigen-vllm: ``provider.generate_saidata(context)``: render, dispatch, plan, stream, check;
  twice: unconstrained (``structured_output: off``, the same request as the others) and with the
  default under saigen (the 40 kB saidata schema in every request, the JSON reply turned to YAML).

Reports CPU time of this process per request (the client's cost) and wall time per request, and
the ratios against the bare SDK. With real saigen importable its templates are used, else the
stand-in in tests/fakehost (same shape, shorter prompt).

    python benchmarks/overhead.py [--requests 2000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._servers import saigen_context_and_prompt, simulators

CONTEXT, PROMPT, TEMPLATES = saigen_context_and_prompt()  # before saigen_vllm looks for the host

from saigen_vllm._prompts import SYSTEM_PROMPT  # noqa: E402
from saigen_vllm.provider import VLLMProvider  # noqa: E402

MODEL = "sim-model"


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


async def measure(
    one: Callable[[], Awaitable[Any]], n: int, concurrency: int
) -> tuple[float, float]:
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> None:
        async with gate:
            await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(guarded() for _ in range(n)))
    return (time.process_time() - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000


async def bare(url: str, n: int, c: int, render: bool) -> tuple[float, float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    template = None
    if render:
        from saigen.llm.prompts import PromptManager

        template = PromptManager().get_template("generation")
    fixed = messages(PROMPT)

    async def one() -> None:
        msgs = messages(template.render(CONTEXT)) if template is not None else fixed
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=msgs,
            max_tokens=64,
            temperature=0.1,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
        text = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert text

    try:
        await measure(one, min(n, 200), c)  # warm-up: connections, imports
        return await measure(one, n, c)
    finally:
        await client.close()


async def ours(url: str, n: int, c: int, structured: str) -> tuple[float, float]:
    provider = VLLMProvider({"base_url": url, "max_tokens": 64, "structured_output": structured})

    async def one() -> None:
        response = await provider.generate_saidata(CONTEXT)
        assert response.content

    try:
        await measure(one, min(n, 200), c)
        return await measure(one, n, c)
    finally:
        await provider.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    n, c = args.requests, args.concurrency
    with simulators(1, slots=100_000, step=0.002, reply_tokens=8) as urls:
        url = urls[0]
        first = asyncio.run(bare(url, n, c, render=False))
        upstream = asyncio.run(bare(url, n, c, render=True))
        plain = asyncio.run(ours(url, n, c, "off"))
        constrained = asyncio.run(ours(url, n, c, "auto"))
        again = asyncio.run(bare(url, n, c, render=False))  # order effects: keep the cheaper
        sdk = min(first, again)
    print(
        f"{n} streamed generations at concurrency {c}; prompt {len(PROMPT):,} characters "
        f"from {TEMPLATES}; vLLM-shaped simulator in its own process"
    )
    print(f"{'':44}{'CPU ms/req':>12}{'wall ms/req':>13}{'CPU ratio':>11}")
    for name, (cpu, wall) in (
        ("bare streaming AsyncOpenAI (baseline)", sdk),
        ("upstream design (host render + bare SDK)", upstream),
        ("saigen-vllm generate_saidata, unconstrained", plain),
        ("saigen-vllm generate_saidata, schema (default)", constrained),
    ):
        print(f"{name:44}{cpu:12.2f}{wall:13.2f}{cpu / sdk[0]:11.2f}")


if __name__ == "__main__":
    main()
