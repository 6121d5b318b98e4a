"""A real vLLM reply that starts with a think block: vLLM's `echo` hands back an assistant
message we began with `<think>...</think>` (continue_final_message), as a reasoning model's reply
without a reasoning parser would begin. The provider keeps only what follows."""

from __future__ import annotations

import asyncio

import pytest

from saigen_vllm.provider import VLLMProvider
from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.vllm

THINKING = "<think>\nnginx: apt, dnf and brew all package it\n</think>\n"


def test_a_think_block_from_the_server_is_cut_off(vllm: RunningServer) -> None:
    extra = {"min_tokens": 8, "echo": True, "continue_final_message": True,
             "add_generation_prompt": False}  # fmt: skip
    provider = VLLMProvider(vllm.config(extra_body=extra))
    messages = [
        {"role": "user", "content": "Write saidata for nginx."},
        {"role": "assistant", "content": THINKING},
    ]
    response = asyncio.run(provider.complete(messages))
    assert "<think>" not in response.content and "</think>" not in response.content
    assert response.content  # the 8 tokens generated after it
    assert response.metadata["reasoning_stripped_chars"] == len(THINKING.rstrip("\n"))
    assert response.metadata["completion_tokens"] == 9
