"""Hooks receive small typed events while a request is retried, failed over and given up."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from saigen_vllm.errors import ServerError, ServerUnreachable
from saigen_vllm.hooks import (
    CircuitEvent,
    EndpointFailedEvent,
    FallbackEvent,
    GiveUpEvent,
    RetryEvent,
    UsageEvent,
)
from saigen_vllm.provider import VLLMProvider
from tests.conftest import ROOT
from tests.support.clock import SkippingClock
from tests.support.fault_server import FaultServer, Ok, Status, closed_port

MESSAGES = [{"role": "user", "content": "x"}]


def record(provider: VLLMProvider) -> list[Any]:
    events: list[Any] = []
    provider.hooks.register_all(events.append)
    return events


def test_retry_then_fallback_events(fault_server: FaultServer) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    fault_server.script_chat(Status(503, retry_after=0), Ok())
    provider = VLLMProvider(
        {"base_url": dead, "endpoints": [fault_server.base_url], "circuit_failure_threshold": 1}
    )
    events = record(provider)
    asyncio.run(provider.complete(MESSAGES))
    kinds = [type(e) for e in events]
    assert kinds == [CircuitEvent, EndpointFailedEvent, FallbackEvent, RetryEvent, UsageEvent]
    assert events[0].name == "on_circuit_open" and events[0].endpoint == dead
    assert events[1].kind == "connect_refused"
    assert (events[2].from_endpoint, events[2].to_endpoint) == (dead, fault_server.base_url)
    assert events[3].kind == "unavailable" and events[3].attempt == 1
    assert events[4].ok and events[4].endpoint == fault_server.base_url
    assert events[4].completion_tokens is not None


def test_giveup_and_circuit_close_events(fault_server: FaultServer) -> None:
    fault_server.script_chat(Status(500))  # retry_max_delay=0: one attempt, no retry
    clock = SkippingClock()
    provider = VLLMProvider(
        {
            "base_url": fault_server.base_url,
            "circuit_failure_threshold": 1,
            "circuit_cooldown": 30,
            "retry_max_delay": 0,
        },
        clock=clock,
    )
    events = record(provider)
    with pytest.raises(ServerError):
        asyncio.run(provider.complete(MESSAGES))
    assert fault_server.count("/v1/chat/completions") == 1
    assert isinstance(events[-2], GiveUpEvent) and events[-2].kind == "server_error"
    assert isinstance(events[-1], UsageEvent) and not events[-1].ok
    assert events[-1].kind == "server_error"
    clock.skip(30)  # the cooldown
    asyncio.run(provider.complete(MESSAGES))
    assert [e.name for e in events[-2:]] == ["on_circuit_close", "on_usage"]


def test_documented_example_hook_writes_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("SAIGEN_VLLM_HOOK_LOG", str(log))
    spec = importlib.util.spec_from_file_location(
        "log_to_file_hook", ROOT / "examples" / "log_to_file_hook.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(__import__("sys").modules, "log_to_file_hook", module)
    provider = VLLMProvider(
        {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "hooks": ["log_to_file_hook:handlers"]}
    )
    with pytest.raises(ServerUnreachable):
        asyncio.run(provider.complete(MESSAGES))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["hook"] for line in lines] == ["on_endpoint_failed", "on_giveup", "on_usage"]
