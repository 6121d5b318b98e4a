"""The entry-point contract, exercised by a host-shaped manager that runs the snippet from
docs/host-integration.md, in both worlds: without the host and with a host installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import FAKEHOST, ROOT
from tests.support.fault_server import FaultServer, closed_port
from tests.support.hostlike_manager import HostLikeManager, host_snippet, run


def two_instances(up: str) -> dict[str, dict[str, Any]]:
    return {
        "vllm_primary": {
            "provider": "vllm",
            "base_url": f"http://127.0.0.1:{closed_port()}/v1",
            "priority": "high",
            "max_retries": 2,
            "connect_timeout": 0.5,
        },
        "vllm_mixtral": {"base_url": up, "priority": "medium", "max_retries": 1},
        "openai": {"api_key": "sk-cloud", "priority": "low"},  # no such plugin: skipped
        "vllm_off": {"provider": "vllm", "enabled": False},
    }


def test_snippet_resolves_by_provider_field_and_prefix() -> None:
    resolve = host_snippet()["resolve_provider_class"]
    from saigen_vllm.provider import VLLMProvider

    assert resolve("vllm_primary", {}) is VLLMProvider
    config = {"provider": "vllm", "model": "m"}
    assert resolve("anything", config) is VLLMProvider
    assert "provider" not in config  # the host drops it before building the provider
    assert resolve("ollama", {}) is None


def test_two_named_instances_fall_back_standalone(fault_server: FaultServer) -> None:
    report = run(two_instances(fault_server.base_url))
    assert report["host_present"] is False
    assert report["served_by"] == "vllm_mixtral"
    assert report["skipped"] == ["openai", "vllm_off"]
    primary = [kind for name, kind in report["attempts"] if name == "vllm_primary"]
    assert primary == ["saigen_vllm.errors.ServerUnreachable"] * 3  # 1 + max_retries, each fast
    assert fault_server.count("/v1/chat/completions") == 1


def test_two_named_instances_fall_back_with_host_installed(fault_server: FaultServer) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKEHOST), str(ROOT)])}
    env.pop("SAIGEN_VLLM_STANDALONE", None)
    config = json.dumps(two_instances(fault_server.base_url))
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.hostlike_manager", config],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["host_present"] is True
    assert report["served_by"] == "vllm_mixtral"
    assert report["response_type"] == "saigen.llm.providers.base.LLMResponse"
    assert "saigen.llm.providers.base.BaseLLMProvider" in report["provider_bases"]["vllm_primary"]
    assert report["connection_error_is_host_type"] == "saigen.llm.providers.base"
    assert report["content"].startswith('version: "0.3"')


def test_configuration_error_is_not_retried(fault_server: FaultServer) -> None:
    from saigen_vllm import _host

    manager = HostLikeManager(
        {
            "vllm_a": {"base_url": fault_server.base_url, "model": "absent", "priority": "high"},
            "vllm_b": {"base_url": fault_server.base_url, "priority": "low"},
        },
        _host,
    )
    import asyncio

    name, _ = asyncio.run(
        manager.generate_with_fallback(_host.GenerationContext(software_name="x"))
    )
    assert name == "vllm_b"
    assert manager.attempts[0] == ("vllm_a", "saigen_vllm.errors.ModelNotServed")
    assert [n for n, _ in manager.attempts].count("vllm_a") == 1


@pytest.mark.parametrize("key", ["vllm", "vllm_primary", "VLLM_gb10"])
def test_key_prefixes(key: str) -> None:
    assert host_snippet()["resolve_provider_class"](key, {}) is not None


def test_the_provider_from_saigens_own_config_dumps() -> None:
    """saigen's LLMConfig (fake host, published shape) dumped whole (unset keys as None, its own
    `timeout: 30`) and as `exclude_unset` (what the entry-point patch passes)."""
    from tests.support.interpreter import run_fresh

    out = run_fresh(
        """
import json
from saigen.models.config import LLMConfig
from saigen_vllm.provider import VLLMProvider
config = LLMConfig(provider="vllm", api_base="http://127.0.0.1:9/v1", api_key="sk-dump-1")
shapes = {}
for name, data in (("whole", config.model_dump()),
                   ("set", config.model_dump(exclude_unset=True))):
    s = VLLMProvider(dict(data)).settings
    shapes[name] = {"given": sorted(k for k, v in data.items() if v is None),
                    "base_url": s.base_url, "model": s.model, "temperature": s.temperature,
                    "max_tokens": s.max_tokens, "timeout": s.timeout,
                    "key": s.api_key.get_secret_value() if s.api_key else None}
print(json.dumps(shapes))
""",
        paths=[FAKEHOST],
    )
    whole, only_set = out["whole"], out["set"]
    assert {"model", "temperature", "max_tokens"} <= set(whole["given"])  # None was handed over
    for shape in (whole, only_set):
        assert shape["base_url"] == "http://127.0.0.1:9/v1" and shape["key"] == "sk-dump-1"
        assert shape["model"] is None  # None means unset: the served model
        assert shape["temperature"] == 0.1 and shape["max_tokens"] == 4096  # our defaults
    assert whole["timeout"] == 30  # saigen's own default, written into the whole dump
    assert only_set["timeout"] == 600  # what the patch passes: only what the user wrote
