"""``saigen-vllm run saigen ...`` against the fake host in the published saigen's shape
(tests/fakehost: an enum-keyed provider manager that drops unknown config keys, skips named
instances and retries on top of the provider). The opt-in tests/integration/test_real_host.py does
the same with the real saigen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FAKEHOST, ROOT
from tests.support.fault_server import FaultServer, Ok, Status, closed_port
from tests.support.interpreter import run_fresh


def saigen_vllm_run(
    *args: str, paths: tuple[Path, ...] = (FAKEHOST,)
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def write_config(tmp_path: Path, providers: dict[str, Any]) -> Path:
    path = tmp_path / "saigen.yaml"
    path.write_text(yaml.safe_dump({"llm_providers": providers}))
    return path


def generate(
    config: Path, output: Path, provider: str | None = "vllm_gb10"
) -> subprocess.CompletedProcess[str]:
    """``saigen-vllm run saigen --config F [--llm-provider P] generate nginx --output O``."""
    chosen = ["--llm-provider", provider] if provider else []
    return saigen_vllm_run(
        "saigen", "--config", str(config), *chosen, "generate", "nginx", "--output", str(output)
    )


def test_a_named_instance_reaches_its_base_url_with_every_key(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    usage = tmp_path / "usage.jsonl"
    config = write_config(
        tmp_path,
        {
            "vllm_gb10": {  # no `provider:` (saigen's model requires one), a float timeout
                "base_url": fault_server.base_url,  # (saigen's is an int): neither may matter
                "timeout": 120.5,
                "usage_log": str(usage),  # a key saigen's model drops
                "structured_output": "off",
            },
            "vllm": {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "priority": "low"},
        },
    )
    out_file = tmp_path / "nginx.yaml"
    out = generate(config, out_file)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out_file.read_text())["metadata"]["name"] == "nginx"
    assert "attempts: vllm_gb10" in out.stdout
    assert fault_server.count("/v1/chat/completions") == 1
    assert len(usage.read_text().splitlines()) == 1  # usage_log reached the provider


def test_the_vllm_key_is_this_provider_not_the_in_tree_one(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, {"vllm": {"provider": "vllm", "base_url": fault_server.base_url}}
    )
    out = generate(config, tmp_path / "o.yaml", provider=None)
    assert out.returncode == 0, out.stderr
    assert fault_server.count("/v1/chat/completions") == 1
    plain = saigen_vllm_run("-m", "saigen.cli.main", "--config", str(config), "generate", "nginx",
                            "--output", str(tmp_path / "o.yaml"))  # fmt: skip
    assert plain.returncode == 0, plain.stderr  # `-m MODULE` is patched the same way


def test_without_the_patch_saigen_would_use_its_in_tree_provider(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The contrast: plain saigen loses base_url and rejects the named instance."""
    config = write_config(
        tmp_path, {"vllm": {"provider": "vllm", "base_url": fault_server.base_url}}
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKEHOST), str(ROOT)])}
    plain = subprocess.run(
        [sys.executable, "-m", "saigen.cli.main", "--config", str(config), "generate", "nginx",
         "--output", str(tmp_path / "o.yaml")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert plain.returncode == 1
    assert "in-tree vllm provider" in plain.stderr
    assert fault_server.count("/v1/chat/completions") == 0


def test_host_retries_do_not_stack_on_ours(fault_server: FaultServer, tmp_path: Path) -> None:
    fault_server.script_chat(*[Status(500)] * 10)
    config = write_config(
        tmp_path,
        {"vllm_gb10": {"base_url": fault_server.base_url, "max_retries": 1, "retry_max_delay": 1}},
    )
    out = generate(config, tmp_path / "o.yaml")
    assert out.returncode == 1
    assert "attempts: vllm_gb10\n" in out.stderr  # the host called it once
    assert fault_server.count("/v1/chat/completions") == 2  # 1 + our max_retries, not x3
    assert "Traceback" not in out.stderr
    assert "Error: All providers failed" in out.stderr  # saigen's own message


def test_an_unreachable_server_is_saigens_error_without_a_traceback(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, {"vllm_gb10": {"base_url": f"http://127.0.0.1:{closed_port()}/v1"}}
    )
    out = generate(config, tmp_path / "o.yaml")
    assert out.returncode == 1
    assert "Cannot connect to vLLM at http://127.0.0.1:" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_an_unknown_provider_name_is_still_saigens_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"vllm_gb10": {"base_url": "http://127.0.0.1:9/v1"}})
    out = generate(config, tmp_path / "o.yaml", provider="nope")
    assert out.returncode == 1
    assert "Invalid LLM provider 'nope'" in out.stderr


def test_several_instances_fall_back_in_priority_order(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.script_chat(Ok(content='version: "0.3"\nmetadata:\n  name: second\n'))
    config = write_config(
        tmp_path,
        {
            "vllm_a": {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "priority": "high"},
            "vllm_b": {"provider": "vllm", "base_url": fault_server.base_url, "priority": "medium"},
            "vllm_off": {"base_url": fault_server.base_url, "enabled": False},
        },
    )
    target = tmp_path / "o.yaml"
    out = generate(config, target, provider="vllm_a")
    assert out.returncode == 0, out.stderr
    assert "attempts: vllm_a,vllm_b" in out.stdout
    assert yaml.safe_load(target.read_text())["metadata"]["name"] == "second"


def test_program_not_found_and_no_host(tmp_path: Path) -> None:
    out = saigen_vllm_run("no-such-program-xyz")
    assert out.returncode == 2
    assert "neither a console script" in out.stderr and "Traceback" not in out.stderr
    out = saigen_vllm_run("saigen", "--help", paths=())
    assert out.returncode == 2
    assert "saigen's command line cannot be loaded here" in out.stderr


SHAPES = """
import json
import saigen.llm.provider_manager as manager
from saigen_vllm import _host_patch
CHANGE
loading = _host_patch.inspect_host()
try:
    _host_patch.apply()
    error = None
except _host_patch.HostShapeError as exc:
    error = str(exc)
initialize = getattr(manager.LLMProviderManager, "_initialize_providers", None)
patched = hasattr(initialize, "__wrapped__")  # functools.wraps marks the patched method
print(json.dumps({"state": loading.state, "error": error, "patched": patched}))
"""


@pytest.mark.parametrize(
    ("change", "state", "patched"),
    [
        ("", "run", True),
        ("manager.resolve_provider_class = lambda key, config: None", "native", False),
        ("del manager.LLMProviderManager._initialize_providers", "unsupported", False),
        ("manager.ProviderConfig = dict", "unsupported", False),
    ],
    ids=["published", "native", "no-initialize", "no-provider-config"],
)
def test_host_shapes(change: str, state: str, patched: bool) -> None:
    out = run_fresh(SHAPES.replace("CHANGE", change), paths=[FAKEHOST])
    assert out["state"] == state and out["patched"] is patched
    if state == "unsupported":
        assert out["error"].startswith("saigen 0.0.0+fakehost: saigen lacks what")
        assert "pip install -U saigen-vllm" in out["error"]
        assert "docs/saigen-entry-points.patch" in out["error"]
    else:
        assert out["error"] is None


def test_doctor_host_loading() -> None:
    code = """
    import asyncio, json
    from saigen_vllm.doctor.checks_environment import host_loading
    result = asyncio.run(host_loading(None))
    print(json.dumps({"status": result.status.value, "summary": result.summary, "hint": result.hint}))
    """
    out = run_fresh(code, paths=[FAKEHOST])
    assert out["status"] == "warn"
    assert "`saigen-vllm run saigen ...`" in out["hint"]
    assert json.loads(json.dumps(run_fresh(code)))["status"] == "skipped"
