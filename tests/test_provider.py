"""The provider's contract, with the HTTP side mocked by respx (faults run against a real server in
tests/faults/, the real vLLM server in tests/integration/)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from saigen_vllm._host import GenerationContext, LLMResponse, ModelCapability
from saigen_vllm.errors import InvalidConfiguration
from saigen_vllm.provider import VLLMProvider

BASE = "http://gb10.test:8000/v1"


def sse(*events: dict) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def chunk(text: str | None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = (
        [] if text is None else [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": choices,
        "usage": usage,
    }


@pytest.fixture
def server() -> respx.MockRouter:
    with respx.mock(base_url="http://gb10.test:8000", assert_all_called=False) as router:
        router.get("/v1/models").respond(
            json={"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 8192}]}
        )
        router.post("/tokenize").respond(json={"count": 42, "max_model_len": 8192})
        router.post("/v1/chat/completions").respond(
            headers={"content-type": "text/event-stream"},
            content=sse(
                chunk("version: "),
                chunk('"0.3"', "stop"),
                chunk(
                    None, usage={"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45}
                ),
            ),
        )
        yield router


def test_generate_saidata_returns_host_response(server: respx.MockRouter) -> None:
    provider = VLLMProvider({"base_url": BASE})
    response = asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
    assert isinstance(response, LLMResponse)
    assert response.content == 'version: "0.3"'
    assert response.tokens_used == 45
    assert response.cost_estimate == 0.0
    assert response.model_used == "m"
    assert response.finish_reason == "stop"
    meta = response.metadata
    assert meta["prompt_tokens"] == 42 and meta["completion_tokens"] == 3
    assert meta["endpoint"] == BASE and meta["request_id"] == "chatcmpl-1"
    assert meta["template"] == "generation"
    assert meta["latency_s"] >= 0
    sent = json.loads(server.calls.last.request.content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][1]["content"].startswith(
        "Write saidata 0.3 YAML for the software `nginx`"
    )
    assert server.calls.last.request.headers["authorization"] == "Bearer EMPTY"


def test_successive_event_loops(server: respx.MockRouter) -> None:
    """saigen runs asyncio.run per command: no 'Event loop is closed' from a stale client."""
    provider = VLLMProvider({"base_url": BASE})
    context = GenerationContext(software_name="nginx")
    for _ in range(3):
        assert asyncio.run(provider.generate_saidata(context)).content


def test_sdk_retries_are_off(server: respx.MockRouter) -> None:
    provider = VLLMProvider({"base_url": BASE})

    async def go() -> int:
        return provider.client.transport.openai_client(BASE).max_retries

    assert asyncio.run(go()) == 0


def test_model_info_before_and_after_contact(server: respx.MockRouter) -> None:
    provider = VLLMProvider({"base_url": BASE, "max_tokens": 2048})
    info = provider.get_model_info()
    assert info.provider == "vllm" and info.cost_per_1k_tokens == 0.0
    assert info.supports_streaming is True
    assert asyncio.run(provider.validate_connection()) is True
    info = provider.get_model_info()
    assert info.name == "m" and info.context_window == 8192 and info.max_tokens == 2048
    assert ModelCapability.STRUCTURED_OUTPUT in info.capabilities
    assert provider.supports_capability(ModelCapability.TEXT_GENERATION)
    assert provider.estimate_cost(10_000) == 0.0


def test_is_available_reflects_config_without_network() -> None:
    provider = VLLMProvider({"base_url": "http://nowhere.invalid:1/v1"})
    assert provider.is_available() is True
    provider.config["temperature"] = 9
    assert provider.is_available() is False


def test_bad_config_raises_at_construction() -> None:
    with pytest.raises(InvalidConfiguration, match="`max_tokens`"):
        VLLMProvider({"max_tokens": -1})


def test_repr_hides_key_and_url_credentials() -> None:
    provider = VLLMProvider({"base_url": "http://user:pw@gb10:8000/v1", "api_key": "sk-abcdef123"})
    text = repr(provider)
    assert "sk-abcdef123" not in text and "pw" not in text
    assert "***@gb10:8000" in text


def test_hooks_from_config_and_bad_hook_path() -> None:
    provider = VLLMProvider({"hooks": ["tests.support.sample_hooks:recorder"]})
    assert len(provider.hooks) == 2
    with pytest.raises(InvalidConfiguration, match="`hooks`"):
        VLLMProvider({"hooks": ["no.such.module:thing"]})


def test_connect_error_through_respx_is_a_host_connection_error() -> None:
    from saigen_vllm._host import ConnectionError

    with respx.mock(base_url="http://gb10.test:8000") as router:
        router.get("/v1/models").mock(side_effect=httpx.ConnectError("refused"))
        provider = VLLMProvider({"base_url": BASE, "max_retries": 0})
        with pytest.raises(ConnectionError):
            asyncio.run(provider.generate_saidata(GenerationContext(software_name="x")))
