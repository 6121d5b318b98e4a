"""Exec mode: check that vLLM and GPUs are there, start the server with the key in its
environment, forward signals, and say when it is ready."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from .plan import ServePlan


class CannotStart(Exception):
    """vLLM, a GPU or a token is missing; the message says how to get it."""


def find_launcher(python: str | None = None) -> list[str]:
    """``vllm serve`` when the vllm CLI works, else ``python -m vllm...api_server``."""
    if python:
        if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
            raise CannotStart(
                f"--vllm-python {python} is not an executable Python. Fix: give the python of "
                "the environment where vLLM is installed, e.g. /opt/vllm/bin/python."
            )
        return [python, "-m", "vllm.entrypoints.openai.api_server", "--model"]
    if shutil.which("vllm"):
        return ["vllm", "serve"]
    if importlib.util.find_spec("vllm") is not None:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model"]
    raise CannotStart(
        "vLLM is not installed here. On a GB10 use NVIDIA's container (`saigen-vllm serve MODEL "
        "--docker`); elsewhere `pip install vllm`, or pass --vllm-python PATH to use another "
        "environment's Python."
    )


async def wait_ready(
    base_url: str,
    timeout: float,
    api_key: str | None = None,
    is_alive: Callable[[], bool] = lambda: True,
) -> tuple[bool, str]:
    """Poll /health, then /v1/models until a model is served. Returns (ready, last error)."""
    from .._redact import server_text
    from .._transport import Transport
    from ..settings import load_settings

    settings = load_settings(
        {"base_url": base_url, "api_key": api_key, "connect_timeout": 2, "stall_timeout": 5}
    )
    transport = Transport(settings)
    endpoint = settings.base_url
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    try:

        async def poll() -> tuple[bool, str]:
            """(ready, what is served or what is still missing)."""
            status = await transport.health(endpoint)
            if status != 200:  # a router's /health is 503 while any one worker is down
                workers = await transport.workers(endpoint) or []
                if any(worker.healthy for worker in workers):
                    status = 200
            if status != 200:
                return False, f"/health answered {status}"
            served = await transport.models(endpoint)
            if not served:
                return False, "/v1/models lists no model yet"
            return True, f"serving {', '.join(m.id for m in served)}"

        while (left := deadline - time.monotonic()) > 0:
            if not is_alive():
                return False, "the server process exited"
            try:  # every poll within what is left: a server dripping bytes cannot hold us
                ready, last = await asyncio.wait_for(poll(), timeout=left)
                if ready:
                    return True, last
            except asyncio.TimeoutError:
                last = "the server did not answer within the time left"
            except Exception as exc:
                last = server_text(f"{type(exc).__name__}: {exc}", api_key)
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return False, last
    finally:
        await transport.aclose()


def run_server(
    plan: ServePlan,
    launcher: list[str],
    *,
    api_key: str | None,
    ready_timeout: float,
    on_ready: Callable[[str], None],
) -> int:
    """Start vLLM with the key in its environment (not argv: not in `ps` output)."""
    env = dict(os.environ)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return run_process(
        launcher + plan.vllm_args(),
        env,
        plan.base_url,
        api_key=api_key,
        ready_timeout=ready_timeout,
        on_ready=on_ready,
    )


def run_process(
    argv: list[str],
    env: dict[str, str],
    base_url: str,
    *,
    api_key: str | None,
    ready_timeout: float,
    on_ready: Callable[[str], None],
) -> int:
    """Start a server, forward SIGINT/SIGTERM to it, report when ``base_url`` serves a model,
    return its exit code."""
    process = subprocess.Popen(argv, env=env)

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ready, detail = asyncio.run(
            wait_ready(base_url, ready_timeout, api_key, lambda: process.poll() is None)
        )
        if ready:
            on_ready(f"ready at {base_url} ({detail})")
        elif process.poll() is None:
            on_ready(f"not ready after {ready_timeout:.0f}s ({detail}); still starting")
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
