"""How long until saigen sees a failure, and until a second endpoint serves, for three faults:
a refused endpoint, a silent one (accepts, never answers), and a stream that stalls.

Beside this package's design, measured in the same run: the upstream design (AsyncOpenAI with
max_retries=2 and one 120 s timeout, non-streamed) under the host's three attempts with 1 s waits.
Every timeout, host wait and the SDK's own retry backoff (0.5 s doubling to 8 s) is multiplied by
SCALE so the run takes seconds; `projected` divides the measured time by SCALE. Work that does not
scale (a few ms per call) is multiplied too, so projections slightly overstate the fast design.

    python benchmarks/failover.py [--scale 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fault_server import FaultServer, Ok, Silent, StallMidStream

from saigen_vllm import _host
from saigen_vllm.provider import VLLMProvider

MESSAGES = [{"role": "user", "content": "saidata for nginx"}]
HOST_ATTEMPTS = 3  # saigen's default max_retries=2
HOST_WAIT = 1.0  # saigen waits 1 s between ConnectionError/GenerationError retries


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UpstreamProvider:
    """The upstream vLLM provider's transport: one timeout, SDK retries, no streaming."""

    def __init__(self, base_url: str, scale: float) -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(
            api_key="not-needed", base_url=base_url, timeout=120 * scale, max_retries=2
        )

    async def generate(self) -> Any:
        import openai

        try:
            return await self.client.chat.completions.create(
                model="fault-model",
                messages=MESSAGES,
                max_tokens=64,  # type: ignore[arg-type]
            )
        except openai.APIConnectionError as exc:
            raise _host.ConnectionError(str(exc)) from exc
        except openai.APIError as exc:
            raise _host.GenerationError(str(exc)) from exc


class Ours:
    def __init__(self, base_url: str, scale: float, endpoints: list[str] | None = None) -> None:
        self.provider = VLLMProvider(
            {
                "base_url": base_url,
                "endpoints": endpoints or [],
                "connect_timeout": 3 * scale,
                "headers_timeout": 10 * scale,
                "stall_timeout": 90 * scale,
                "timeout": 600 * scale,
                "retry_max_delay": 30 * scale,
            }
        )

    async def generate(self) -> Any:
        return await self.provider.complete(MESSAGES)


async def host_attempts(call: Any, scale: float) -> str:
    """saigen's _generate_with_retry around one provider: 3 attempts, 1 s apart."""
    outcome = "ok"
    for attempt in range(HOST_ATTEMPTS):
        try:
            await call()
            return "ok"
        except (_host.ConnectionError, _host.GenerationError) as exc:
            outcome = type(exc).__name__
            if attempt < HOST_ATTEMPTS - 1:
                await asyncio.sleep(HOST_WAIT * scale)
    return outcome


def timed(design: str, bad: str, good: str | None, scale: float) -> float:
    """One package through the host: 3 attempts on `bad`; with `good`, the fallback after it.
    Ours is one provider with `endpoints: [good]`; upstream is two providers in the host."""

    async def run() -> float:
        if design == "ours":
            first: Any = Ours(bad, scale, [good] if good else None)
            second: Any = None
        else:
            first = UpstreamProvider(bad, scale)
            second = UpstreamProvider(good, scale) if good else None
        started = time.perf_counter()
        outcome = await host_attempts(first.generate, scale)
        if outcome != "ok" and second is not None:
            outcome = await host_attempts(second.generate, scale)
        elapsed = time.perf_counter() - started
        if good is not None:
            assert outcome == "ok", (design, outcome)
        for provider in (first, second):
            if isinstance(provider, UpstreamProvider):
                await provider.client.close()
            elif isinstance(provider, Ours):
                await provider.provider.aclose()
        return elapsed

    return asyncio.run(run())


def scenario(name: str, good: FaultServer, scale: float) -> list[tuple[str, float, float]]:
    bad_server = None
    if name == "refused":
        bad_url = f"http://127.0.0.1:{closed_port()}/v1"
    else:
        bad_server = FaultServer().__enter__()
        behaviour = Silent() if name == "silent" else StallMidStream()
        bad_server.script_chat(*[behaviour] * 40)
        bad_url = bad_server.base_url
    try:
        return [
            (
                f"{name}: host sees the failure",
                timed("ours", bad_url, None, scale),
                timed("upstream", bad_url, None, scale),
            ),
            (
                f"{name}: success on the 2nd endpoint",
                timed("ours", bad_url, good.base_url, scale),
                timed("upstream", bad_url, good.base_url, scale),
            ),
        ]
    finally:
        if bad_server is not None:
            bad_server.__exit__(None, None, None)


def scale_sdk_backoff(scale: float) -> None:
    """The upstream design's SDK retries sleep 0.5 s doubling to 8 s; scale them like timeouts."""
    import openai._base_client as base_client

    base_client.INITIAL_RETRY_DELAY *= scale  # type: ignore[attr-defined]
    base_client.MAX_RETRY_DELAY *= scale  # type: ignore[attr-defined]


def main() -> None:
    import openai  # noqa: F401 - imported before timing: neither design pays for it below

    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.01)
    args = parser.parse_args()
    scale = args.scale
    scale_sdk_backoff(scale)
    print(f"timeouts and host waits x {scale:g}; projected = measured / {scale:g}")
    print(
        f"{'case':42} {'saigen-vllm':>12} {'upstream':>10} {'ratio':>7} "
        f"{'proj. ours':>11} {'proj. upstream':>15}"
    )
    with FaultServer() as good:
        good.script_chat(*[Ok() for _ in range(50)])
        # warm-up: the first call of each design pays one-off imports and client set-up
        timed("ours", good.base_url, good.base_url, scale)
        timed("upstream", good.base_url, good.base_url, scale)
        for name in ("refused", "silent", "stalled stream"):
            for case, t_ours, t_up in scenario(name, good, scale):
                print(
                    f"{case:42} {t_ours:11.3f}s {t_up:9.3f}s {t_up / t_ours:6.1f}x "
                    f"{t_ours / scale:10.0f}s {t_up / scale:14.0f}s"
                )


if __name__ == "__main__":
    main()
