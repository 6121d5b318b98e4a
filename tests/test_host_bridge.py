"""Both worlds: with the host importable the provider *is* one of its providers; without it, the
package's own equivalents carry the same names, fields and meaning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from saigen_vllm import _host, _standalone
from tests.conftest import FAKEHOST
from tests.support.interpreter import run_fresh

PROBE = """
import json
from saigen_vllm import _host, errors
from saigen_vllm.provider import VLLMProvider
from saigen_vllm._prompts import render_messages
base = __import__("saigen.llm.providers.base", fromlist=["x"]) if _host.HOST_PRESENT else None
ctx = _host.GenerationContext
p = VLLMProvider({"model": "m"})
out = {
    "present": _host.HOST_PRESENT,
    "reason": _host.HOST_IMPORT_ERROR,
    "is_host_subclass": bool(base) and issubclass(VLLMProvider, base.BaseLLMProvider),
    "errors_are_host": bool(base) and all([
        issubclass(errors.ServerUnreachable, base.ConnectionError),
        issubclass(errors.ModelNotServed, base.ConfigurationError),
        issubclass(errors.TruncatedOutput, base.GenerationError),
        issubclass(errors.Overloaded, base.RateLimitError),
        issubclass(errors.Unauthorized, base.AuthenticationError),
    ]),
    "model_info_type": type(p.get_model_info()).__module__,
    "templates": [
        render_messages(ctx(software_name="nginx"))[1][1]["content"],
        render_messages(ctx(software_name="nginx", existing_saidata={"version": "0.3"}))[1][1]["content"],
        render_messages(ctx(software_name="nginx", user_hints={"validation_feedback": {"validation_error": "x"}}))[1][1]["content"],
    ],
    "name": p.get_provider_name(),
}
print(json.dumps(out))
"""


def test_with_host_installed() -> None:
    out = run_fresh(PROBE, paths=[FAKEHOST])
    assert out["present"] is True and out["reason"] is None
    assert out["is_host_subclass"] is True
    assert out["errors_are_host"] is True
    assert out["model_info_type"] == "saigen.llm.providers.base"
    generation, update, retry = out["templates"]
    assert generation.startswith("[host-template:generation] saidata for nginx")
    assert update.startswith("[host-template:update] saidata for nginx")
    assert retry.startswith("[host-template:retry] saidata for nginx")
    assert out["name"] == "vllm"


def test_without_host_uses_builtin_prompt() -> None:
    out = run_fresh(PROBE)
    assert out["present"] is False
    assert out["reason"] == "saigen is not installed"
    assert out["model_info_type"] == "saigen_vllm._standalone"
    generation, update, retry = out["templates"]
    assert generation.startswith("Write saidata 0.3 YAML for the software `nginx`")
    assert "Update this existing saidata" in update and '"version": "0.3"' in update
    assert "failed validation" in retry and '"validation_error": "x"' in retry
    assert out["name"] == "vllm"


def test_standalone_can_be_forced() -> None:
    out = run_fresh(PROBE, paths=[FAKEHOST], env={"SAIGEN_VLLM_STANDALONE": "1"})
    assert out["present"] is False
    assert "SAIGEN_VLLM_STANDALONE" in out["reason"]


def test_broken_host_falls_back_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "saigen"
    broken.mkdir()
    (broken / "__init__.py").write_text("x = f'{'\n")  # e.g. 3.12-only syntax on older Python
    out = run_fresh(PROBE, paths=[tmp_path])
    assert out["present"] is False
    assert "failed to import: SyntaxError" in out["reason"]


def test_standalone_types_mirror_the_host_fields() -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "fake_base", FAKEHOST / "saigen" / "llm" / "providers" / "base.py"
    )
    assert spec and spec.loader
    fake = importlib.util.module_from_spec(spec)
    sys.modules["fake_base"] = fake
    spec.loader.exec_module(fake)
    for name in ("ModelInfo", "LLMResponse"):
        ours = [(f.name, f.default) for f in dataclasses.fields(getattr(_standalone, name))]
        theirs = [(f.name, f.default) for f in dataclasses.fields(getattr(fake, name))]
        assert ours == theirs, name
    assert [c.value for c in _standalone.ModelCapability] == [c.value for c in fake.ModelCapability]
    for name in (
        "ConfigurationError",
        "ConnectionError",
        "GenerationError",
        "RateLimitError",
        "AuthenticationError",
    ):
        assert issubclass(getattr(_standalone, name), _standalone.LLMProviderError)
    assert _host.HOST_PRESENT is False


RENDER = """
import json
from saigen.llm import prompts as host
from saigen.models.generation import GenerationContext
from saigen_vllm._prompts import render_host, render_messages

contexts = [
    GenerationContext(software_name="nginx", target_providers=["apt", "brew"]),
    GenerationContext(software_name="redis", user_hints={"note": "$HOME and ${x}"},
                      repository_data=[{"name": "redis", "version": "7"}]),
    GenerationContext(software_name="x", existing_saidata={"version": "0.3"},
                      user_hints={"validation_feedback": {"validation_error": "bad"}}),
]
same = []
for context in contexts:
    for name in ("generation", "update", "retry"):
        template = host.PromptManager().get_template(name)
        same.append(render_host(template, context) == template.render(context))
host.SCHEMA_READS["count"] = 0
for _ in range(20):
    render_messages(contexts[2])  # the retry template includes the schema
reads = host.SCHEMA_READS["count"]
print(json.dumps({"same": same, "schema_reads": reads,
                  "restored": host.load_saidata_schema.__name__}))
"""


def test_host_templates_render_byte_identical_and_read_the_schema_once() -> None:
    out = run_fresh(RENDER, paths=[FAKEHOST])
    assert out["same"] == [True] * 9
    assert out["schema_reads"] <= 1  # the host's own render reads it once per section
    assert out["restored"] == "load_saidata_schema"  # the host's function is left as it was
