"""The provider inside the real saigen (opt-in: saigen is not on the package index).

Set SAIGEN_VLLM_HOST_SOURCE to a sai-suite checkout (the folder holding `saigen/`) and
SAIGEN_VLLM_HOST_PYTHON to a Python >= 3.12 environment with saigen's dependencies and this
package installed; the test then renders saigen's own templates and generates through them against
the real vLLM test server, with saigen's own classes and exceptions.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.integration.conftest import RunningServer

# not marked `vllm`: CI cannot have saigen, so this one is opt-in everywhere
pytestmark = [
    pytest.mark.skipif(
        not (
            os.environ.get("SAIGEN_VLLM_HOST_SOURCE") and os.environ.get("SAIGEN_VLLM_HOST_PYTHON")
        ),
        reason="set SAIGEN_VLLM_HOST_SOURCE and SAIGEN_VLLM_HOST_PYTHON to run against real saigen",
    ),
]

SCRIPT = """
import asyncio, json, sys
from saigen.llm.providers.base import BaseLLMProvider, LLMResponse, ConnectionError as HostConnectionError
from saigen.models.generation import GenerationContext
from saigen_vllm.provider import VLLMProvider
from saigen_vllm._prompts import render_messages

config = json.loads(sys.argv[1])
provider = VLLMProvider(config)
context = GenerationContext(software_name="nginx", target_providers=["apt", "brew"])
template, messages = render_messages(context)
response = asyncio.run(provider.generate_saidata(context))
second = asyncio.run(provider.generate_saidata(context))
try:
    asyncio.run(VLLMProvider({**config, "base_url": "http://127.0.0.1:9/v1"}).generate_saidata(context))
    refused = None
except HostConnectionError as exc:
    refused = type(exc).__name__
print(json.dumps({
    "subclass": issubclass(VLLMProvider, BaseLLMProvider),
    "response_is_host_type": isinstance(response, LLMResponse),
    "template": template, "prompt_chars": len(messages[1]["content"]),
    "finish_reason": response.finish_reason, "metadata": response.metadata,
    "same_across_loops": response.content == second.content, "refused": refused,
}))
"""


def test_inside_real_saigen(vllm: RunningServer) -> None:
    config = vllm.config(max_tokens=64)
    out = subprocess.run(
        [os.environ["SAIGEN_VLLM_HOST_PYTHON"], "-c", textwrap.dedent(SCRIPT), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.environ["SAIGEN_VLLM_HOST_SOURCE"]},
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["subclass"] and report["response_is_host_type"]
    assert report["template"] == "generation"
    assert report["prompt_chars"] > 10_000  # saigen's own template, not the built-in one
    assert report["finish_reason"] == "stop"
    assert report["metadata"]["prompt_tokens_source"] == "server"
    assert report["same_across_loops"] is True
    assert report["refused"] == "ServerUnreachable"


WRITE_AND_VALIDATE = """
import asyncio, json, sys
from saigen.models.generation import GenerationContext
from saigen_vllm.provider import VLLMProvider

provider = VLLMProvider(json.loads(sys.argv[1]))
response = asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(response.content)
print(json.dumps({"metadata": response.metadata}))
"""


def test_default_settings_write_saidata_that_saigen_validate_accepts(
    vllm: RunningServer, tmp_path: Path
) -> None:
    """saigen's own schema constrains the reply (no setting needed) and `saigen validate`, its own
    command line, accepts the file written from it."""
    target = tmp_path / "nginx.yaml"
    env = {**os.environ, "PYTHONPATH": os.environ["SAIGEN_VLLM_HOST_SOURCE"]}
    python = os.environ["SAIGEN_VLLM_HOST_PYTHON"]
    config = json.dumps(vllm.config(max_tokens=512, extra_body={}))
    out = subprocess.run(
        [python, "-c", textwrap.dedent(WRITE_AND_VALIDATE), config, str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["metadata"]["structured_output"] == "json_schema"
    checked = subprocess.run(
        [python, "-m", "saigen.cli.main", "validate", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _saigen(
    *args: str, source: str | None = None, run: bool = True
) -> subprocess.CompletedProcess[str]:
    """saigen's own command line, under `saigen-vllm run` (or plain), from the checkout."""
    python = os.environ["SAIGEN_VLLM_HOST_PYTHON"]
    env = {**os.environ, "PYTHONPATH": source or os.environ["SAIGEN_VLLM_HOST_SOURCE"]}
    env = {k: v for k, v in env.items() if not k.startswith("SAIGEN_VLLM_TEST")}
    head = (
        [python, "-m", "saigen_vllm", "run", "saigen"] if run else [python, "-m", "saigen.cli.main"]
    )
    return subprocess.run([*head, *args], capture_output=True, text=True, timeout=300, env=env)


def _real_config(tmp_path: Path, vllm: RunningServer, base_url: str) -> Path:
    import yaml

    config = tmp_path / "saigen.yaml"
    entry = {"base_url": base_url, "api_key": vllm.api_key, "temperature": 0, "timeout": 120.5}
    config.write_text(
        yaml.safe_dump(
            {
                "llm_providers": {"vllm_gb10": entry},
                "rag": {"enabled": False},
                "generation": {"output_directory": str(tmp_path / "out")},
            }
        )
    )
    return config


def test_saigen_vllm_run_saigen_generate(vllm: RunningServer, tmp_path: Path) -> None:
    """Unmodified saigen: a named instance with keys saigen's model drops (base_url) or rejects
    (a float timeout, no `provider:`) generates through this provider, and `saigen validate`
    accepts the file it wrote."""
    config = _real_config(tmp_path, vllm, vllm.base_url)
    target = tmp_path / "nginx.yaml"
    out = _saigen("--config", str(config), "--llm-provider", "vllm_gb10",
                  "generate", "nginx", "--no-rag", "--output", str(target))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Successfully generated saidata using provider: vllm_gb10" in out.stderr + out.stdout
    checked = _saigen("validate", str(target), run=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    plain = _saigen("--config", str(config), "--llm-provider", "vllm_gb10",
                    "generate", "nginx", "--no-rag", "--output", str(target), run=False)  # fmt: skip
    assert "vllm_gb10" in plain.stdout + plain.stderr and plain.returncode != 0  # the contrast


def test_saigen_vllm_run_failure_is_saigens_message(vllm: RunningServer, tmp_path: Path) -> None:
    config = _real_config(tmp_path, vllm, "http://127.0.0.1:9/v1")
    out = _saigen("--config", str(config), "--llm-provider", "vllm_gb10",
                  "generate", "nginx", "--no-rag", "--output", str(tmp_path / "x.yaml"))  # fmt: skip
    text = out.stdout + out.stderr
    assert "Cannot connect to vLLM at http://127.0.0.1:9/v1" in text
    assert "Traceback" not in text
    assert text.count("Attempting generation with provider: vllm_gb10") == 1


def test_the_upstream_patch_applies_and_saigen_then_discovers_plugins(
    vllm: RunningServer, tmp_path: Path
) -> None:
    import shutil

    import yaml

    source = tmp_path / "sai-suite"
    shutil.copytree(os.environ["SAIGEN_VLLM_HOST_SOURCE"], source, symlinks=True)
    patch = Path(__file__).resolve().parents[2] / "docs" / "saigen-entry-points.patch"
    applied = subprocess.run(
        ["git", "apply", "--verbose", str(patch)], cwd=source, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    config = tmp_path / "native.yaml"
    entry = {"provider": "vllm", "base_url": vllm.base_url, "api_key": vllm.api_key,
             "temperature": 0, "timeout": 120}  # fmt: skip
    config.write_text(
        yaml.safe_dump({"llm_providers": {"vllm_gb10": entry}, "rag": {"enabled": False}})
    )
    target = tmp_path / "nginx.yaml"
    out = _saigen("--config", str(config), "--llm-provider", "vllm_gb10", "generate", "nginx",
                  "--no-rag", "--output", str(target), source=str(source), run=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Successfully generated saidata using provider: vllm_gb10" in out.stderr + out.stdout
    python = os.environ["SAIGEN_VLLM_HOST_PYTHON"]
    state = subprocess.run(
        [python, "-c", "from saigen_vllm._host_patch import inspect_host; print(inspect_host().state)"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(source)},
    )  # fmt: skip
    assert state.stdout.strip() == "native", state.stderr
