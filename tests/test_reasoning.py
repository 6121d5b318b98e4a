"""Reasoning text never reaches saidata: a leading think block is cut off, a reply that is all
reasoning is refused with the fix (respx for the server)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from saigen_vllm._host import GenerationContext
from saigen_vllm._reasoning import split_reasoning
from saigen_vllm.errors import InvalidReply, TruncatedOutput
from saigen_vllm.provider import VLLMProvider
from tests.test_provider import chunk, sse

BASE = "http://gb10.test:8000/v1"
SAIDATA = 'version: "0.3"\nmetadata:\n  name: nginx\n'


@pytest.mark.parametrize(
    ("text", "reasoning", "answer", "closed"),
    [
        ("<think>\nplan it\n</think>\n\n" + SAIDATA, "<think>\nplan it\n</think>", SAIDATA, True),
        ("  <THINKING>x</THINKING>" + SAIDATA, "  <THINKING>x</THINKING>", SAIDATA, True),
        (
            "opened by the template\n</think>\n" + SAIDATA,
            "opened by the template\n</think>",
            SAIDATA,
            True,
        ),
        ("<think>still going", "<think>still going", "", False),
        (SAIDATA, "", SAIDATA, True),
        ("description: about <think> tags\n", "", "description: about <think> tags\n", True),
    ],
)
def test_split(text: str, reasoning: str, answer: str, closed: bool) -> None:
    assert split_reasoning(text) == (reasoning, answer, closed)


def reply(text: str, finish: str = "stop") -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=sse(chunk(text, finish), chunk(None, usage={"prompt_tokens": 5,
                                                           "completion_tokens": 9})),
    )  # fmt: skip


def generate(text: str, finish: str = "stop", **config: object) -> object:
    with respx.mock(base_url="http://gb10.test:8000", assert_all_called=False) as router:
        router.get("/v1/models").respond(
            json={"object": "list", "data": [{"id": "m", "object": "model"}]}
        )
        router.get("/version").respond(json={"version": "0.32.0"})
        router.post("/v1/chat/completions").mock(return_value=reply(text, finish))
        provider = VLLMProvider({"base_url": BASE, "max_retries": 0, **config})
        return asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))


def test_the_think_block_is_cut_from_the_saidata() -> None:
    response = generate("<think>\nnginx is a web server\n</think>\n" + SAIDATA)
    assert response.content == SAIDATA
    assert response.metadata["reasoning_stripped_chars"] == len(
        "<think>\nnginx is a web server\n</think>"
    )


def test_a_constrained_reply_after_thinking_still_becomes_yaml(tmp_path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object"}')
    response = generate(
        '<think>ok</think>{"version":"0.3","metadata":{"name":"nginx"}}',
        response_schema=str(schema),
    )
    assert response.content == "version: '0.3'\nmetadata:\n  name: nginx\n"


def test_all_reasoning_is_refused_with_the_fix() -> None:
    with pytest.raises(TruncatedOutput, match="still reasoning") as cut:
        generate("<think>let me consider the package managers one by one", finish="length")
    assert "enable_thinking: false" in str(cut.value)
    with pytest.raises(InvalidReply, match="reasoning only"):
        generate("<think>nothing else follows")


def sent_body(served: str, **config: object) -> dict[str, object]:
    """The request body the provider sends to a server serving ``served``."""
    import json

    with respx.mock(base_url="http://gb10.test:8000", assert_all_called=False) as router:
        router.get("/v1/models").respond(
            json={"object": "list", "data": [{"id": served, "object": "model"}]}
        )
        router.get("/version").respond(json={"version": "0.32.0"})
        route = router.post("/v1/chat/completions").mock(return_value=reply(SAIDATA))
        provider = VLLMProvider({"base_url": BASE, "max_retries": 0, **config})
        asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
        body: dict[str, object] = json.loads(route.calls.last.request.content)
        return body


@pytest.mark.parametrize(
    ("served", "field", "value"),
    [
        ("Qwen/Qwen3-8B", "chat_template_kwargs", {"enable_thinking": False}),
        ("nvidia/Qwen3-32B-NVFP4", "chat_template_kwargs", {"enable_thinking": False}),
        ("openai/gpt-oss-20b", "reasoning_effort", "low"),
    ],
)
def test_thinking_is_off_by_default_for_models_that_think(
    served: str, field: str, value: object
) -> None:
    assert sent_body(served)[field] == value


def test_models_that_do_not_think_get_nothing_extra() -> None:
    body = sent_body("meta-llama/Llama-3.1-8B-Instruct")
    assert "chat_template_kwargs" not in body and "reasoning_effort" not in body


def test_the_users_extra_body_wins_over_the_catalog() -> None:
    body = sent_body(
        "Qwen/Qwen3-8B",
        extra_body={"chat_template_kwargs": {"enable_thinking": True, "custom": 1}, "top_k": 20},
    )
    assert body["chat_template_kwargs"] == {"enable_thinking": True, "custom": 1}
    assert body["top_k"] == 20
