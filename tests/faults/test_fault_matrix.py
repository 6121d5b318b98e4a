"""Every row of the fault matrix (docs/reliability.md) against a real misbehaving server.

Each test asserts the exception type the host sees, how many requests the server received, and an
upper bound on elapsed time (generous slack: these are bounds, not benchmarks).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from saigen_vllm._host import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    GenerationError,
    RateLimitError,
)
from saigen_vllm.errors import (
    BadRequest,
    CircuitOpen,
    ContextLengthExceeded,
    InvalidReply,
    ModelNotServed,
    ServerError,
    ServerUnreachable,
    TruncatedOutput,
    Unauthorized,
)
from saigen_vllm.provider import VLLMProvider
from tests.support.clock import SkippingClock
from tests.support.fault_server import (
    MODEL,
    Blackhole,
    EndWithoutFinish,
    FaultServer,
    HeadersThenStall,
    InBandError,
    JSONReply,
    MalformedStream,
    Ok,
    Reset,
    Silent,
    StallMidStream,
    Status,
    Truncate,
    closed_port,
    models_reply,
)

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "saidata for nginx"}]
FAST = {
    "connect_timeout": 0.5,
    "headers_timeout": 0.4,
    "stall_timeout": 0.6,
    "timeout": 5,
    "max_retries": 1,
    "retry_max_delay": 5,
}


def make(base_url: str, **config: Any) -> VLLMProvider:
    return VLLMProvider({"base_url": base_url, **FAST, **config})


def run(provider: VLLMProvider, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()

    async def go() -> Any:
        try:
            return await provider.complete(MESSAGES, **kwargs)
        finally:
            await provider.aclose()

    result = asyncio.run(go())
    return result, time.monotonic() - started


def fails(
    provider: VLLMProvider, expected: type[BaseException], **kwargs: Any
) -> tuple[Any, float]:
    started = time.monotonic()
    with pytest.raises(expected) as info:
        run(provider, **kwargs)
    return info.value, time.monotonic() - started


def test_ok_baseline(fault_server: FaultServer) -> None:
    response, _ = run(make(fault_server.base_url))
    assert response.content.startswith('version: "0.3"')
    assert response.finish_reason == "stop"
    assert response.tokens_used == 104
    assert response.metadata["attempts"] == 1
    assert fault_server.count(CHAT) == 1


def test_connect_refused_fails_fast_and_once() -> None:
    provider = make(f"http://127.0.0.1:{closed_port()}/v1")
    events: list[Any] = []
    provider.hooks.register_all(events.append)
    error, elapsed = fails(provider, ConnectionError)
    assert isinstance(error, ServerUnreachable)
    assert "Cannot connect" in str(error) and "saigen-vllm serve" in str(error)
    assert elapsed < 1.0
    (failed,) = [e for e in events if e.name == "on_endpoint_failed"]
    assert failed.attempts == 1  # refused is certain: no second attempt inside this call
    assert not [e for e in events if e.name == "on_retry"]


def test_truncated_body_is_retried_then_a_connection_error(fault_server: FaultServer) -> None:
    fault_server.script("/v1/models", Truncate(), Truncate())
    error, _ = fails(make(fault_server.base_url), ConnectionError)
    assert "broke" in str(error)
    assert fault_server.count("/v1/models") == 2
    assert fault_server.count(CHAT) == 0


def test_server_restarted_with_a_smaller_context_is_relearned(fault_server: FaultServer) -> None:
    provider = make(fault_server.base_url, max_tokens=3000)
    run(provider)
    fault_server.script_chat(
        Status(400, message="This model's maximum context length is 2048 tokens.")
    )
    fails(provider, ConfigurationError)
    fault_server.script("/v1/models", models_reply(max_model_len=2048))
    fault_server.tokenize_count = 100
    response, _ = run(provider)
    assert response.metadata["max_tokens"] == 2048 - 100


def test_connect_timeout_gives_up_within_connect_timeout() -> None:
    with Blackhole() as hole:
        error, elapsed = fails(make(hole.base_url), ConnectionError)
    assert "connect_timeout" in str(error)
    assert elapsed < FAST["connect_timeout"] + 1.5


def test_reset_is_retried_once(fault_server: FaultServer) -> None:
    fault_server.script_chat(Reset(), Reset())
    error, elapsed = fails(make(fault_server.base_url), ConnectionError)
    assert "broke" in str(error)
    assert fault_server.count(CHAT) == 2
    assert elapsed < 3


def test_reset_then_ok_succeeds_with_retry_stats(fault_server: FaultServer) -> None:
    fault_server.script_chat(Reset(), Ok())
    response, _ = run(make(fault_server.base_url))
    assert response.metadata["attempts"] == 2
    assert response.metadata["retries"] == 1
    assert fault_server.count(CHAT) == 2


def test_silent_server_gives_up_within_headers_timeout(fault_server: FaultServer) -> None:
    fault_server.script_chat(Silent())
    error, elapsed = fails(make(fault_server.base_url), ConnectionError)
    assert "headers_timeout" in str(error)
    assert fault_server.count(CHAT) == 1
    assert elapsed < FAST["headers_timeout"] + 1.0


def test_headers_then_stall(fault_server: FaultServer) -> None:
    fault_server.script_chat(HeadersThenStall())
    _, elapsed = fails(make(fault_server.base_url), ConnectionError)
    assert fault_server.count(CHAT) == 1
    assert elapsed < FAST["stall_timeout"] + 1.5


def test_stall_mid_stream(fault_server: FaultServer) -> None:
    fault_server.script_chat(StallMidStream())
    _, elapsed = fails(make(fault_server.base_url), ConnectionError)
    assert fault_server.count(CHAT) == 1
    assert elapsed < FAST["stall_timeout"] + 1.5


def test_slow_but_steady_stream_is_not_cut_off(fault_server: FaultServer) -> None:
    # each gap (0.3 s) is under stall_timeout (0.6 s) while the whole stream takes longer
    fault_server.script_chat(Ok(chunk_delay=0.3, chunks=4))
    response, elapsed = run(make(fault_server.base_url))
    assert response.finish_reason == "stop"
    assert elapsed > FAST["stall_timeout"]


def test_whole_generation_deadline(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(chunk_delay=0.4, chunks=10))
    error, elapsed = fails(make(fault_server.base_url, timeout=1.0), GenerationError)
    assert "timeout=1.0" in str(error)
    assert fault_server.count(CHAT) == 1
    assert elapsed < 2.5


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_retried_once(fault_server: FaultServer, code: int) -> None:
    fault_server.script_chat(Status(code), Status(code))
    error, elapsed = fails(
        make(fault_server.base_url), GenerationError if code == 500 else ConnectionError
    )
    assert str(code) in str(error)
    assert fault_server.count(CHAT) == 2
    assert elapsed < 3


def test_503_then_ok(fault_server: FaultServer) -> None:
    fault_server.script_chat(Status(503, retry_after=0.2), Ok())
    response, _ = run(make(fault_server.base_url))
    assert response.metadata["retries"] == 1
    assert 0.2 <= response.metadata["retry_wait_s"] < 1
    first, second = fault_server.requests(CHAT)
    assert second.at - first.at >= 0.2


def test_429_honours_retry_after_ms(fault_server: FaultServer) -> None:
    fault_server.script_chat(Status(429, retry_after_ms=300), Ok())
    response, _ = run(make(fault_server.base_url))
    first, second = fault_server.requests(CHAT)
    assert second.at - first.at >= 0.3
    assert response.metadata["retry_wait_s"] >= 0.3


def test_429_retry_after_beyond_budget_fails_fast(fault_server: FaultServer) -> None:
    fault_server.script_chat(Status(429, retry_after=120))
    _, elapsed = fails(make(fault_server.base_url), RateLimitError)
    assert fault_server.count(CHAT) == 1
    assert elapsed < 1.5


def test_408_is_retried(fault_server: FaultServer) -> None:
    fault_server.script_chat(Status(408), Ok())
    run(make(fault_server.base_url))
    assert fault_server.count(CHAT) == 2


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
        "'max_tokens' or 'max_completion_tokens' is too large: 5000. This model's maximum context "
        "length is 4096 tokens and your request has 100 input tokens (5000 > 4096 - 100).",
        "The decoder prompt (length 5000) is longer than the maximum model length of 4096",
        "max_tokens=5000 cannot be greater than max_model_len=4096. Please request fewer output "
        "tokens.",
    ],
)
@pytest.mark.parametrize("flat", [False, True])
def test_context_length_400_not_retried(
    fault_server: FaultServer, message: str, flat: bool
) -> None:
    fault_server.script_chat(Status(400, message=message, flat=flat))
    error, elapsed = fails(make(fault_server.base_url), ConfigurationError)
    assert isinstance(error, ContextLengthExceeded)
    assert "--max-model-len" in str(error)
    assert fault_server.count(CHAT) == 1
    assert elapsed < 1


@pytest.mark.parametrize("code", [400, 422])
def test_bad_request_not_retried(fault_server: FaultServer, code: int) -> None:
    fault_server.script_chat(Status(code, message="temperature must be non-negative"))
    error, _ = fails(make(fault_server.base_url), ConfigurationError)
    assert isinstance(error, BadRequest)
    assert "temperature must be non-negative" in str(error)
    assert fault_server.count(CHAT) == 1


def test_404_model_not_retried(fault_server: FaultServer) -> None:
    fault_server.script_chat(Status(404, message="The model `x` does not exist."))
    error, _ = fails(make(fault_server.base_url), ConfigurationError)
    assert isinstance(error, ModelNotServed)
    assert fault_server.count(CHAT) == 1


@pytest.mark.parametrize("code", [401, 403])
def test_auth_errors_not_retried_and_key_never_shown(fault_server: FaultServer, code: int) -> None:
    key = "sk-secret-fault-key-999"
    fault_server.script_chat(Status(code, raw_body='{"error": "Unauthorized"}'))
    error, _ = fails(make(fault_server.base_url, api_key=key), AuthenticationError)
    assert isinstance(error, Unauthorized)
    assert "refused the configured API key" in str(error)
    assert key not in str(error) and key not in repr(error)
    assert fault_server.count(CHAT) == 1
    assert fault_server.requests(CHAT)[0].headers["authorization"] == f"Bearer {key}"


def test_in_band_sse_error(fault_server: FaultServer) -> None:
    fault_server.script_chat(InBandError(), InBandError())
    error, _ = fails(make(fault_server.base_url), GenerationError)
    assert isinstance(error, ServerError)
    assert "engine crashed mid-stream" in str(error)
    assert fault_server.count(CHAT) == 2


def test_malformed_stream(fault_server: FaultServer) -> None:
    fault_server.script_chat(MalformedStream(), MalformedStream())
    error, _ = fails(make(fault_server.base_url), GenerationError)
    assert isinstance(error, InvalidReply)
    assert fault_server.count(CHAT) == 2


def test_stream_without_finish_reason_is_not_success(fault_server: FaultServer) -> None:
    fault_server.script_chat(EndWithoutFinish(), EndWithoutFinish())
    error, _ = fails(make(fault_server.base_url), ConnectionError)
    assert "before finishing" in str(error)


def test_empty_content(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(content=""), Ok(content="  "))
    error, _ = fails(make(fault_server.base_url), GenerationError)
    assert isinstance(error, InvalidReply) and "empty" in str(error)
    assert fault_server.count(CHAT) == 2


def test_truncated_output_never_returned(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(finish_reason="length"))
    error, _ = fails(make(fault_server.base_url), GenerationError)
    assert isinstance(error, TruncatedOutput)
    assert "max_tokens" in str(error)
    assert fault_server.count(CHAT) == 1


def test_aborted_reply_is_not_success(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(finish_reason="abort"), Ok(finish_reason="abort"))
    error, _ = fails(make(fault_server.base_url), GenerationError)
    assert isinstance(error, InvalidReply) and "'abort'" in str(error)
    assert fault_server.count(CHAT) == 2  # retried once: an abort can be a preempted request


def test_json_requested_but_unparsable(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(content='{"name": "ngi'), Ok(content='{"name": "ngi'))
    error, _ = fails(
        make(fault_server.base_url), GenerationError, response_format={"type": "json_object"}
    )
    assert isinstance(error, InvalidReply)


def test_json_whitespace_runaway_is_reported(fault_server: FaultServer) -> None:
    fault_server.script_chat(Ok(content="{\n\n\n\n   ", finish_reason="length"))
    error, _ = fails(
        make(fault_server.base_url), GenerationError, response_format={"type": "json_object"}
    )
    assert isinstance(error, TruncatedOutput) and "whitespace" in str(error)


def test_malformed_models_listing(fault_server: FaultServer) -> None:
    fault_server.script("/v1/models", JSONReply("this is not json"), JSONReply("nor this"))
    fails(make(fault_server.base_url), GenerationError)
    assert fault_server.count(CHAT) == 0


def test_base_url_without_v1_path_is_a_configuration_error(fault_server: FaultServer) -> None:
    fault_server.script("/v1/models", JSONReply({"detail": "Not Found"}, 404))
    error, _ = fails(make(fault_server.base_url), ConfigurationError)
    assert "base_url" in str(error)


def test_no_model_configured_uses_the_served_one(fault_server: FaultServer) -> None:
    response, _ = run(make(fault_server.base_url))
    assert response.model_used == MODEL
    assert fault_server.requests(CHAT)[0].json()["model"] == MODEL


def test_several_served_and_none_configured(fault_server: FaultServer) -> None:
    fault_server.script("/v1/models", models_reply("a", "b"), models_reply("a", "b"))
    error, _ = fails(make(fault_server.base_url), ConfigurationError)
    assert isinstance(error, ModelNotServed)
    assert "a, b" in str(error)
    assert fault_server.count(CHAT) == 0


def test_configured_model_not_served_lists_served(fault_server: FaultServer) -> None:
    error, _ = fails(make(fault_server.base_url, model="llama-70b"), ConfigurationError)
    assert isinstance(error, ModelNotServed)
    assert MODEL in str(error) and "llama-70b" in str(error)
    assert error.served == [MODEL]
    assert fault_server.count(CHAT) == 0


def test_prompt_that_cannot_fit_is_never_sent(fault_server: FaultServer) -> None:
    fault_server.tokenize_count = 5000
    error, elapsed = fails(make(fault_server.base_url), ConfigurationError)
    assert isinstance(error, ContextLengthExceeded)
    assert error.prompt_tokens == 5000 and error.max_model_len == 4096
    assert "was not sent" in str(error)
    assert fault_server.count(CHAT) == 0
    assert elapsed < 1


def test_max_tokens_clamped_to_fit(fault_server: FaultServer) -> None:
    fault_server.tokenize_count = 3000
    response, _ = run(make(fault_server.base_url, max_tokens=4000))
    assert fault_server.requests(CHAT)[0].json()["max_tokens"] == 4096 - 3000
    assert response.metadata["max_tokens_clamped_from"] == 4000
    assert response.metadata["prompt_tokens_source"] == "server"


def test_estimate_used_when_server_cannot_tokenize(fault_server: FaultServer) -> None:
    fault_server.tokenize_count = None
    response, _ = run(make(fault_server.base_url, max_tokens=4000))
    assert response.metadata["prompt_tokens_source"] == "estimate"
    assert fault_server.count("/tokenize") == 1


def test_prompt_is_not_counted_when_its_byte_bound_fits(fault_server: FaultServer) -> None:
    fault_server.tokenize_count = 3000  # would clamp, if it were asked
    response, _ = run(make(fault_server.base_url, max_tokens=100))
    assert fault_server.count("/tokenize") == 0
    assert response.metadata["prompt_tokens_source"] == "bound"
    assert fault_server.requests(CHAT)[0].json()["max_tokens"] == 100


def test_second_endpoint_serves_after_refused_first(fault_server: FaultServer) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    provider = make(dead, endpoints=[fault_server.base_url])
    response, elapsed = run(provider)
    assert response.metadata["endpoints_tried"] == [dead, fault_server.base_url]
    assert elapsed < 1.5


def test_second_endpoint_serves_after_silent_first() -> None:
    with FaultServer() as silent, FaultServer() as good:
        silent.script_chat(Silent())
        provider = make(silent.base_url, endpoints=[good.base_url])
        response, elapsed = run(provider)
    assert response.metadata["endpoint"] == good.base_url
    assert elapsed < FAST["headers_timeout"] + 1.5
    assert silent.count(CHAT) == 1 and good.count(CHAT) == 1


def test_circuit_opens_and_fails_in_under_10ms() -> None:
    provider = make(
        f"http://127.0.0.1:{closed_port()}/v1", circuit_failure_threshold=1, circuit_cooldown=60
    )
    fails(provider, ConnectionError)

    async def second() -> float:
        started = time.perf_counter()
        with pytest.raises(CircuitOpen):
            await provider.complete(MESSAGES)
        return time.perf_counter() - started

    assert asyncio.run(second()) < 0.010


def test_half_open_probe_closes_circuit(fault_server: FaultServer) -> None:
    clock = SkippingClock()
    provider = VLLMProvider(
        {"base_url": fault_server.base_url, **FAST, "circuit_failure_threshold": 1,
         "circuit_cooldown": 30},
        clock=clock,
    )  # fmt: skip
    fault_server.script_chat(Status(503), Status(503))
    fails(provider, ConnectionError)
    with pytest.raises(CircuitOpen):
        run(provider)
    clock.skip(30)
    response, _ = run(provider)
    assert response.content
    assert fault_server.count("/health") == 1
