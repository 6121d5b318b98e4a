"""Structured output (issue 11): which constraint a saidata request carries, in which form for
which server, the JSON reply handed over as YAML, and a refused constraint dropped once per
endpoint. The HTTP side is mocked by respx; tests/integration/test_structured_real.py runs the
same against a real vLLM."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from saigen_vllm._host import GenerationContext
from saigen_vllm._structured import (
    Constraint,
    json_to_yaml,
    parse_version,
    saidata_constraint,
)
from saigen_vllm.errors import ConstraintRefused, InvalidConfiguration, TruncatedOutput
from saigen_vllm.provider import VLLMProvider
from tests.conftest import FAKEHOST, SHARED
from tests.support.interpreter import run_fresh
from tests.test_provider import chunk, sse

BASE = "http://gb10.test:8000/v1"
SCHEMA_FILE = SHARED / "data" / "saidata-0.3-schema.json"
MINIMAL = '{"version":"1.1","metadata":{"name":"nginx","description":"Ünïcode web server"}}'
REFUSAL = {
    "error": {
        "message": "Grammar error: regex parse error: look-around is not supported",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
}


def reply(text: str, finish: str = "stop") -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=sse(
            chunk(text, finish),
            chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}),
        ),
    )


class Server:
    """A respx vLLM: ``/version`` says ``version``; chat answers from ``answers`` in turn."""

    def __init__(self, router: respx.MockRouter, version: str | None) -> None:
        router.get("/v1/models").respond(
            json={"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 8192}]}
        )
        if version is None:
            router.get("/version").respond(404, json={"detail": "Not Found"})
        else:
            router.get("/version").respond(json={"version": version})
        self.answers: list[httpx.Response] = []
        self.bodies: list[dict[str, Any]] = []
        router.post("/v1/chat/completions").mock(side_effect=self._chat)

    def _chat(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def router() -> respx.MockRouter:
    with respx.mock(base_url="http://gb10.test:8000", assert_all_called=False) as mocked:
        yield mocked


def generate(provider: VLLMProvider) -> Any:
    async def go() -> Any:
        try:
            return await provider.generate_saidata(GenerationContext(software_name="nginx"))
        finally:
            await provider.aclose()

    return asyncio.run(go())


def provider(**config: Any) -> VLLMProvider:
    return VLLMProvider({"base_url": BASE, "response_schema": str(SCHEMA_FILE), **config})


# -- which constraint -------------------------------------------------------------------------


def test_modes_without_a_host(caplog: pytest.LogCaptureFixture) -> None:
    assert saidata_constraint("off", SCHEMA_FILE) is None
    assert saidata_constraint("auto", None) is None  # no host here, no file: nothing
    assert saidata_constraint("json_object", SCHEMA_FILE) == Constraint("json_object")
    from_file = saidata_constraint("auto", SCHEMA_FILE)
    assert from_file is not None and from_file.kind == "json_schema"
    assert from_file.schema == json.loads(SCHEMA_FILE.read_text())
    assert from_file.source == str(SCHEMA_FILE) and from_file.optional
    with caplog.at_level(logging.WARNING, logger="saigen_vllm"):
        assert saidata_constraint("json_schema", None) == Constraint("json_object")
    assert "no schema is known" in caplog.text


def test_the_hosts_schema_is_used_under_saigen() -> None:
    out = run_fresh(
        """
        import json
        from saigen_vllm._structured import saidata_constraint
        c = saidata_constraint("auto", None)
        print(json.dumps({"kind": c.kind, "source": c.source, "schema": c.schema}))
        """,
        paths=[FAKEHOST],
    )
    assert out["kind"] == "json_schema" and out["source"] == "host"
    assert out["schema"] == json.loads(SCHEMA_FILE.read_text())


def test_a_host_without_its_schema_file_means_no_constraint() -> None:
    out = run_fresh(
        """
        import json
        import saigen.llm.prompts as prompts
        prompts.load_saidata_schema = lambda: "Schema file not found - using basic requirements"
        from saigen_vllm._structured import saidata_constraint
        print(json.dumps(repr(saidata_constraint("auto", None))))
        """,
        paths=[FAKEHOST],
    )
    assert out == "None"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("/nonexistent/schema.json", "cannot be read"),
        (str(SHARED / "data" / "sample-nginx.yaml"), "is not JSON"),
        ("LIST", "holds a JSON list, not a schema object"),
    ],
)
def test_a_bad_response_schema_is_a_configuration_error(
    value: str, error: str, tmp_path: Path
) -> None:
    if value == "LIST":
        value = str(tmp_path / "list.json")
        Path(value).write_text("[1, 2]")
    with pytest.raises(InvalidConfiguration) as caught:
        VLLMProvider({"response_schema": value})
    assert caught.value.field == "response_schema"
    assert error in str(caught.value) and "Fix:" in str(caught.value)


def test_structured_output_words() -> None:
    for raw, expected in [(None, "auto"), ("", "auto"), (" OFF ", "off"), (False, "off")]:
        assert VLLMProvider({"structured_output": raw}).settings.structured_output == expected
    with pytest.raises(InvalidConfiguration) as caught:
        VLLMProvider({"structured_output": "grammar"})
    assert caught.value.field == "structured_output"


# -- in which form ----------------------------------------------------------------------------


def test_request_form_follows_the_server_version() -> None:
    schema = {"type": "object", "description": "é"}
    constraint = Constraint("json_schema", schema=schema)
    compact = '{"type":"object","description":"é"}'
    assert constraint.request_fields((0, 32, 0)) == (
        None,
        {"json": compact, "disable_any_whitespace": True},
    )
    assert constraint.request_fields((0, 11)) == (
        None,
        {"json": compact, "disable_any_whitespace": True},
    )
    portable = {"type": "json_schema", "json_schema": {"name": "saidata", "schema": schema}}
    assert constraint.request_fields((0, 10, 2)) == (portable, None)
    assert constraint.request_fields(None) == (portable, None)
    assert Constraint("json_object").request_fields((0, 32)) == (
        None,
        {"json_object": True, "disable_any_whitespace": True},
    )
    assert Constraint("json_object").request_fields(None) == ({"type": "json_object"}, None)
    mine = {"type": "json_object"}
    verbatim = Constraint.from_response_format(mine)
    assert verbatim is not None and not verbatim.optional
    assert verbatim.request_fields((0, 32)) == (mine, None)
    assert Constraint.from_response_format({"type": "text"}) is None
    assert "yyy" not in repr(Constraint("json_schema", schema={"x": "y" * 1000}))


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("0.32.0", (0, 32, 0)),
        ("0.11.2.dev3+g1a2b", (0, 11, 2)),
        ("0.10", (0, 10)),
        ("dev", None),
        (None, None),
        ("", None),
    ],
)
def test_parse_version(text: str | None, version: tuple[int, ...] | None) -> None:
    assert parse_version(text) == version


def test_json_to_yaml_keeps_order_and_block_style() -> None:
    text = json_to_yaml(
        '{"version":"0.3","metadata":{"name":"nginx","tags":["web","proxy"]},"a":1,"b":"é"}'
    )
    assert text == (
        "version: '0.3'\nmetadata:\n  name: nginx\n  tags:\n  - web\n  - proxy\na: 1\nb: é\n"
    )
    assert list(yaml.safe_load(text)) == ["version", "metadata", "a", "b"]
    with pytest.raises(ValueError):
        json_to_yaml("version: 0.3")


# -- a saidata request, end to end -------------------------------------------------------------


def test_modern_server_gets_structured_outputs_and_the_host_gets_yaml(
    router: respx.MockRouter,
) -> None:
    server = Server(router, "0.32.0")
    server.answers = [reply(MINIMAL)]
    response = generate(provider(extra_body={"structured_outputs": {"whitespace_pattern": " "}}))
    sent = server.bodies[0]
    assert "response_format" not in sent
    assert json.loads(sent["structured_outputs"]["json"]) == json.loads(SCHEMA_FILE.read_text())
    assert sent["structured_outputs"] == {
        "json": sent["structured_outputs"]["json"],
        "disable_any_whitespace": True,
        "whitespace_pattern": " ",  # the user's own keys stay
    }
    assert response.content == (
        "version: '1.1'\nmetadata:\n  name: nginx\n  description: Ünïcode web server\n"
    )
    assert response.metadata["structured_output"] == "json_schema"


def test_server_without_version_gets_response_format(router: respx.MockRouter) -> None:
    server = Server(router, None)
    server.answers = [reply(MINIMAL)]
    generate(provider())
    sent = server.bodies[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "saidata"
    assert sent["response_format"]["json_schema"]["schema"] == json.loads(SCHEMA_FILE.read_text())
    assert "structured_outputs" not in sent


def test_off_sends_no_constraint(router: respx.MockRouter) -> None:
    server = Server(router, "0.32.0")
    server.answers = [reply('version: "0.3"')]
    response = generate(provider(structured_output="off"))
    assert "response_format" not in server.bodies[0]
    assert "structured_outputs" not in server.bodies[0]
    assert response.content == 'version: "0.3"'
    assert response.metadata["structured_output"] is None


@pytest.mark.parametrize("in_band", [False, True], ids=["status-400", "in-band-400"])
def test_a_refused_schema_costs_one_request_once_per_endpoint(
    router: respx.MockRouter, in_band: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = Server(router, "0.32.0")
    refused = (
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(REFUSAL))
        if in_band
        else httpx.Response(400, json=REFUSAL)
    )
    server.answers = [refused, reply('version: "0.3"')]
    vllm = provider(max_retries=0)
    with caplog.at_level(logging.WARNING, logger="saigen_vllm"):
        first = generate(vllm)
        second = generate(vllm)
    assert first.content == second.content == 'version: "0.3"'
    assert [("structured_outputs" in body) for body in server.bodies] == [True, False, False]
    assert first.metadata["structured_output_refused"] is True
    assert second.metadata["structured_output_refused"] is True
    assert first.metadata["attempts"] == 1  # not a retry: the same attempt, unconstrained
    warnings = [r for r in caplog.records if "cannot constrain output" in r.getMessage()]
    assert len(warnings) == 1 and "gb10.test" in warnings[0].getMessage()


def test_a_refused_caller_format_is_an_error_not_dropped(router: respx.MockRouter) -> None:
    server = Server(router, "0.32.0")
    server.answers = [httpx.Response(400, json=REFUSAL)]
    vllm = VLLMProvider({"base_url": BASE, "max_retries": 3})
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(ConstraintRefused) as caught:
        asyncio.run(vllm.complete([{"role": "user", "content": "hi"}], response_format=fmt))
    assert "structured_output" in str(caught.value)
    assert len(server.bodies) == 1 and server.bodies[0]["response_format"] == fmt


def test_truncated_constrained_json_is_never_returned(router: respx.MockRouter) -> None:
    server = Server(router, "0.32.0")
    server.answers = [reply('{"version":"0.3","metadata":{"name":"ngi', finish="length")]
    with pytest.raises(TruncatedOutput) as caught:
        generate(provider(max_retries=0))
    assert "JSON-constrained output" in str(caught.value)


def test_a_server_that_ignores_the_constraint_is_passed_through(
    router: respx.MockRouter,
) -> None:
    server = Server(router, "0.32.0")
    server.answers = [reply('version: "0.3"\nmetadata:\n  name: nginx\n')]
    response = generate(provider())
    assert "structured_outputs" in server.bodies[0]
    assert response.content == 'version: "0.3"\nmetadata:\n  name: nginx\n'
    assert response.metadata["structured_output"] is None
    assert response.metadata["structured_output_ignored"] is True


HOST_DEFAULTS = """
import asyncio, json
import httpx, respx
from saigen.models.generation import GenerationContext
from saigen_vllm.provider import VLLMProvider
from tests.test_provider import chunk, sse

bodies = []
def chat(request):
    bodies.append(json.loads(request.content))
    return httpx.Response(200, headers={"content-type": "text/event-stream"},
                          content=sse(chunk('{"version":"0.3","metadata":{"name":"x"}}', "stop")))

with respx.mock(base_url="http://gb10.test:8000", assert_all_called=False) as router:
    router.get("/v1/models").respond(json={"object": "list", "data": [{"id": "m", "object": "model"}]})
    router.get("/version").respond(json={"version": "0.32.0"})
    router.post("/v1/chat/completions").mock(side_effect=chat)
    provider = VLLMProvider(CONFIG)
    contexts = [
        GenerationContext(software_name="nginx"),
        GenerationContext(software_name="nginx", existing_saidata={"version": "0.3"}),
        GenerationContext(software_name="nginx", user_hints={"validation_feedback": {"x": 1}}),
    ]
    replies = [asyncio.run(provider.generate_saidata(c)) for c in contexts]
print(json.dumps({
    "schemas": [json.loads(b["structured_outputs"]["json"]) if "structured_outputs" in b else None
                for b in bodies],
    "templates": [r.metadata["template"] for r in replies],
    "contents": [r.content for r in replies],
}))
"""


@pytest.mark.parametrize("mode", ["default", "off"])
def test_under_saigen_every_saidata_request_carries_the_hosts_schema(mode: str) -> None:
    config: dict[str, Any] = {"base_url": BASE}
    if mode == "off":
        config["structured_output"] = "off"
    out = run_fresh(HOST_DEFAULTS.replace("CONFIG", repr(config)), paths=[FAKEHOST])
    assert out["templates"] == ["generation", "update", "retry"]
    schema = json.loads(SCHEMA_FILE.read_text())
    if mode == "off":
        assert out["schemas"] == [None, None, None]
        assert out["contents"] == ['{"version":"0.3","metadata":{"name":"x"}}'] * 3
    else:
        assert out["schemas"] == [schema, schema, schema]
        assert out["contents"] == ["version: '0.3'\nmetadata:\n  name: x\n"] * 3
