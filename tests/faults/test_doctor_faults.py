"""The doctor against a misbehaving server: silent, 503, slow."""

from __future__ import annotations

import json
import time

from tests.support.fault_server import FaultServer, JSONReply, Ok, Silent
from tests.test_doctor import by_id, doctor


def test_silent_server_is_reported_within_bounds(fault_server: FaultServer) -> None:
    fault_server.script("/health", Silent())
    started = time.monotonic()
    out = doctor("--json", "--base-url", fault_server.base_url, "--check", "server")
    assert time.monotonic() - started < 15
    checks = by_id(json.loads(out.stdout))
    assert checks["server.reachable"][0]["status"] == "fail"
    assert "stall" in checks["server.reachable"][0]["summary"]
    assert out.returncode == 1


def test_503_health_is_an_engine_failure(fault_server: FaultServer) -> None:
    fault_server.script("/health", JSONReply({"error": "engine dead"}, 503))
    out = doctor("--json", "--base-url", fault_server.base_url, "--check", "server.health")
    (health,) = by_id(json.loads(out.stdout))["server.health"]
    assert health["status"] == "fail" and "503" in health["summary"]
    assert out.returncode == 1


def test_slow_stream_probe_passes_and_measures(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(chunk_delay=0.3, chunks=4))  # slow but steady: under the stall
    out = doctor(
        "--json", "--base-url", fault_server.base_url, "--probe", "--check", "server.probe"
    )
    (probe,) = by_id(json.loads(out.stdout))["server.probe"]
    assert probe["status"] == "ok", probe
    assert probe["details"]["time_to_first_token_s"] >= 0.3
    assert probe["details"]["completion_tokens"] == 4
    assert out.returncode == 0


def test_models_listing_that_hangs_is_a_failure_not_a_hang(fault_server: FaultServer) -> None:
    fault_server.script("/v1/models", Silent())
    started = time.monotonic()
    out = doctor("--json", "--base-url", fault_server.base_url, "--check", "server.auth")
    assert time.monotonic() - started < 20
    (auth,) = by_id(json.loads(out.stdout))["server.auth"]
    assert auth["status"] == "fail"  # a finding about the server, within the stall bound
    assert "stall" in auth["summary"]
    assert out.returncode == 1


def test_queueing_and_full_kv_cache_warn(fault_server: FaultServer) -> None:
    fault_server.script(
        "/metrics",
        JSONReply(
            'vllm:num_requests_waiting{model_name="m"} 3\n'
            'vllm:kv_cache_usage_perc{model_name="m"} 0.95\n'
        ),
    )
    out = doctor("--json", "--base-url", fault_server.base_url, "--check", "server.metrics")
    (metrics,) = by_id(json.loads(out.stdout))["server.metrics"]
    assert metrics["status"] == "warn"
    assert "KV cache 95%" in metrics["summary"] and "waiting 3" in metrics["summary"]
