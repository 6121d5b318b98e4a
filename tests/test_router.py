"""`saigen-vllm router` (the command it builds, prints and refuses) and the provider behind a
vllm-router (respx: its /workers, the workers' own /v1/models and /metrics, its error words).
tests/integration/test_router_real.py runs a real vllm-router in front of two real servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
import respx

from saigen_vllm._endpoint import Endpoint
from saigen_vllm._failures import FailureKind, classify
from saigen_vllm._transport import Transport
from saigen_vllm.router import RouterRefused, build_router_plan, worker_url
from saigen_vllm.settings import load_settings
from tests.conftest import ROOT

ROUTER = "http://router.test:8080"
WORKERS = {
    "workers": [
        {"url": "http://w1.test:8000", "is_healthy": True, "load": 3},
        {"url": "http://w2.test:8000", "is_healthy": True, "load": 1},
        {"url": "http://w3.test:8000", "is_healthy": False, "load": 0},
    ],
    "total": 3,
}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "router", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


# -- the command -------------------------------------------------------------------------------


def test_worker_urls_lose_their_v1_and_duplicates() -> None:
    assert worker_url("http://gb10-a:8000/v1/") == "http://gb10-a:8000"
    plan = build_router_plan(["http://a:8000/v1", "http://a:8000", "https://b:8443"])
    assert plan.workers == ["http://a:8000", "https://b:8443"]
    args = plan.router_args()
    assert args[args.index("--worker-urls") + 1 : args.index("--policy")] == plan.workers
    assert args[args.index("--policy") + 1] == "cache_aware"
    assert args[args.index("--health-check-interval-secs") + 1] == "5"
    assert plan.base_url == "http://127.0.0.1:8080/v1"
    with pytest.raises(RouterRefused, match="not an http"):
        build_router_plan(["gb10-a:8000"])
    with pytest.raises(RouterRefused, match="unknown policy"):
        build_router_plan(["http://a:8000"], policy="fastest")


def test_listening_beyond_loopback_needs_the_workers_key() -> None:
    with pytest.raises(RouterRefused, match="require no key"):
        build_router_plan(["http://a:8000"], host="0.0.0.0")
    plan = build_router_plan(["http://a:8000"], host="0.0.0.0", workers_need_key=True)
    assert plan.base_url == "http://127.0.0.1:8080/v1"
    out = cli("http://a:8000", "--host", "0.0.0.0", "--print")
    assert out.returncode == 1 and out.stderr.startswith("refused: the router would listen on")
    out = cli("http://a:8000", "--host", "0.0.0.0", "--api-key-env", "NOPE_UNSET_XYZ", "--print")
    assert out.returncode == 1 and "$NOPE_UNSET_XYZ is empty" in out.stderr


def test_print_systemd_docker_forms() -> None:
    out = cli("http://a:8000/v1", "http://b:8000", "--port", "9000", "--print", "--",
              "--log-level", "debug")  # fmt: skip
    assert out.returncode == 0, out.stderr
    command = out.stdout.splitlines()[-1]
    assert command.startswith("vllm-router --host 127.0.0.1 --port 9000 --worker-urls")
    assert "http://a:8000 http://b:8000" in command and command.endswith("--log-level debug")
    assert "# saigen: base_url: http://127.0.0.1:9000/v1" in out.stdout
    unit = cli("http://a:8000", "--systemd", env={"K": "sk-secret"}).stdout
    assert "DynamicUser=yes" in unit and "ExecStart=" in unit
    docker = cli("http://127.0.0.1:8000", "--docker").stdout
    assert "--network host" in docker and "vllm-router==" in docker
    assert "--host 127.0.0.1" in docker  # a loopback plan stays on loopback
    both = cli("http://a:8000", "--docker", "--systemd")
    assert both.returncode == 2 and "choose one of" in both.stderr


def test_the_key_never_reaches_argv_or_output() -> None:
    out = cli("http://a:8000", "--host", "0.0.0.0", "--api-key-env", "K", "--print",
              env={"K": "sk-secret-123"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "sk-secret-123" not in out.stdout + out.stderr
    assert "--api-key" not in out.stdout.splitlines()[-1]


# -- the provider behind a router -------------------------------------------------------------


def metrics(generated: float) -> str:
    return f'vllm:generation_tokens_total{{engine="0"}} {generated}\n'


@pytest.fixture
def router() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as mocked:
        mocked.get(f"{ROUTER}/workers").respond(json=WORKERS)
        mocked.get(f"{ROUTER}/health", name="health").respond(503, text='Unhealthy servers: ["w3"]')
        mocked.get(f"{ROUTER}/metrics").respond(text=metrics(5))  # one worker's: not used
        for name, limit, generated in (("w1", 8192, 100.0), ("w2", 4096, 20.0)):
            mocked.get(f"http://{name}.test:8000/v1/models").respond(
                json={
                    "object": "list",
                    "data": [{"id": "m", "object": "model", "max_model_len": limit}],
                }
            )
            mocked.get(f"http://{name}.test:8000/metrics").respond(text=metrics(generated))
        mocked.get("http://w3.test:8000/v1/models").mock(side_effect=httpx.ConnectError("down"))
        yield mocked


def endpoint() -> Endpoint:
    settings = load_settings({"base_url": ROUTER + "/v1"})
    return Endpoint(settings.endpoint_specs[0], settings, Transport(settings))


def test_a_router_with_one_worker_down_is_healthy(router: respx.MockRouter) -> None:
    async def go() -> tuple[bool, bool, object, object]:
        e = endpoint()
        return await e.is_router(), await e.healthy(), await e._observe(), await e.served_models()

    is_router, healthy, observed, served = asyncio.run(go())
    assert is_router and healthy  # though the router's own /health says 503
    assert observed.healthy and observed.progress == 120.0  # w1 + w2, from the workers
    assert [(m.id, m.max_model_len) for m in served] == [("m", 4096)]  # the smallest
    assert not router.routes["health"].called  # its 503 would have meant "dead"


def test_a_plain_vllm_server_is_not_a_router() -> None:
    with respx.mock(assert_all_called=False) as mocked:
        mocked.get("http://v.test:8000/workers").respond(404, json={"detail": "Not Found"})
        mocked.get("http://v.test:8000/health").respond(200)
        settings = load_settings({"base_url": "http://v.test:8000/v1"})
        e = Endpoint(settings.endpoint_specs[0], settings, Transport(settings))
        assert asyncio.run(e.is_router()) is False
        assert asyncio.run(e.healthy()) is True


@pytest.mark.parametrize(
    ("status", "text", "kind", "blamed"),
    [
        (503, "No workers are currently available", FailureKind.NO_WORKER, True),
        (
            500,
            "Request failed: error sending request for url (http://w3.test:8000/v1/chat/"
            "completions)",
            FailureKind.WORKER_FAILED,
            False,
        ),
        (502, "Bad Gateway", FailureKind.UNAVAILABLE, False),
    ],
)
def test_router_failures(
    router: respx.MockRouter, status: int, text: str, kind: FailureKind, blamed: bool
) -> None:
    import openai

    request = httpx.Request("POST", f"{ROUTER}/v1/chat/completions")
    error = openai.APIStatusError(text, response=httpx.Response(status, text=text, request=request),
                                  body=text)  # fmt: skip
    failure = classify(error, endpoint=ROUTER + "/v1")
    assert failure.kind is kind and failure.transient and failure.next_endpoint
    e = endpoint()
    assert asyncio.run(e.is_router())
    assert e.blames(failure) is blamed  # one worker's trouble is not the router's
    settings = load_settings({"base_url": "http://v.test:8000/v1"})
    plain = Endpoint(settings.endpoint_specs[0], settings, Transport(settings))
    assert plain.blames(failure) is True  # a plain server is blamed as before
