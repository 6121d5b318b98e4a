"""The doctor without any server, with a fake nvidia-smi, and its JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import ROOT
from tests.support.fault_server import closed_port

# the schema as shipped in the installed package
SCHEMA = json.loads(files("saigen_vllm.doctor").joinpath("report.schema.json").read_text())


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "doctor", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def by_id(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for item in report["checks"]:
        found.setdefault(item["id"], []).append(item)
    return found


def test_closed_port_fails_fast_with_a_hint_and_no_traceback() -> None:
    started = time.monotonic()
    out = doctor("--json", "--base-url", f"http://127.0.0.1:{closed_port()}/v1")
    elapsed = time.monotonic() - started
    assert out.returncode == 1
    assert elapsed < 15
    assert "Traceback" not in out.stdout + out.stderr
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    (reachable,) = by_id(report)["server.reachable"]
    assert reachable["status"] == "fail"
    assert "saigen-vllm serve" in reachable["hint"] and "--base-url" in reachable["hint"]
    assert report["health"] == "critical"
    assert by_id(report)["server.models"][0]["status"] == "skipped"


@pytest.mark.parametrize(
    ("smi", "status"),
    [
        ("#!/bin/sh\nexit 0\n", "info"),  # nvidia-smi runs and lists no GPU: a client machine
        (None, "warn"),  # no nvidia-smi at all
    ],
)
def test_client_only_machine_is_not_a_failure(smi: str | None, status: str, tmp_path: Path) -> None:
    path = tmp_path / "nvidia-smi"
    if smi is not None:
        path.write_text(smi)
        path.chmod(0o755)
    out = doctor("--json", "--check", "hardware", env={"SAIGEN_VLLM_NVIDIA_SMI": str(path)})
    gpu = by_id(json.loads(out.stdout))["hardware.gpu"][0]
    assert gpu["status"] == status
    assert out.returncode == 0


@pytest.fixture
def fake_gb10(tmp_path: Path) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  --query-gpu*) echo "NVIDIA GB10, 580.95.05, [N/A], [N/A], 12.1" ;;\n'
        '  *) echo "| NVIDIA-SMI 580.95.05   Driver Version: 580.95.05   CUDA Version: 13.0 |" ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return script


def test_gb10_recognised_and_unified_memory_read_from_meminfo(fake_gb10: Path) -> None:
    out = doctor(
        "--json", "--check", "hardware", "-v", env={"SAIGEN_VLLM_NVIDIA_SMI": str(fake_gb10)}
    )
    checks = by_id(json.loads(out.stdout))
    gpu = checks["hardware.gpu"][0]
    assert gpu["status"] == "ok"
    assert "GB10 recognised" in gpu["summary"] and "CUDA 13.0" in gpu["summary"]
    assert gpu["details"]["profile"] == "gb10"
    memory = checks["hardware.memory"][0]
    assert memory["details"]["source"].startswith("/proc/meminfo")


def test_gb10_memory_utilisation_advice(fake_gb10: Path) -> None:
    out = doctor(
        "--json",
        "--check",
        "hardware.memory",
        "--check",
        "config",
        env={
            "SAIGEN_VLLM_NVIDIA_SMI": str(fake_gb10),
            "SAIGEN_VLLM_GPU_MEMORY_UTILIZATION": "0.95",
        },
    )
    checks = by_id(json.loads(out.stdout))
    assert checks["hardware.memory"][0]["status"] == "warn"
    assert "0.8" in checks["hardware.memory"][0]["hint"]
    assert checks["config.valid"][0]["status"] == "warn"


def test_list_checks_and_select() -> None:
    listing = doctor("--list-checks")
    assert listing.returncode == 0
    ids = [line.split()[0] for line in listing.stdout.splitlines()]
    assert {
        "env.python",
        "plugin.entry_point",
        "host.saigen",
        "config.valid",
        "server.reachable",
        "server.models",
        "server.context",
        "server.metrics",
        "server.probe",
        "hardware.gpu",
        "hardware.memory",
        "hf.token",
    } <= set(ids)
    assert ids[-1] == "server.probe"  # slow checks last
    out = doctor("--json", "--check", "env.python", "--check", "plugin")
    assert [c["id"] for c in json.loads(out.stdout)["checks"]] == [
        "env.python",
        "plugin.entry_point",
        "plugin.conflicts",
    ]
    assert out.returncode == 0


def test_unknown_check_id_exits_2() -> None:
    out = doctor("--check", "server.nope")
    assert out.returncode == 2
    assert "unknown check id" in out.stderr


def test_unreadable_config_exits_2(tmp_path: Path) -> None:
    out = doctor("--config", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "cannot read --config" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm_providers: [unclosed\n")
    assert doctor("--config", str(bad)).returncode == 2


def test_config_file_entries_checked_and_secrets_redacted(tmp_path: Path) -> None:
    secret = "sk-doctor-secret-0042"
    config = tmp_path / "saigen.yaml"
    config.write_text(
        "llm_providers:\n"
        "  vllm_primary:\n"
        "    provider: vllm\n"
        f"    base_url: http://127.0.0.1:{closed_port()}/v1\n"
        f"    api_key: {secret}\n"
        "    priority: high\n"
        "  vllm_broken:\n"
        "    temperature: 7\n"
        "  vllm_env:\n"
        "    api_key: ${DOCTOR_TEST_KEY}\n"  # saigen would send this text: 401
        "  vllm_hooks:\n"
        "    hooks: [no_such_module_xyz:handler]\n"
        "  vllm_short:\n"
        "    model: Qwen3-8B\n"  # serve serves it as Qwen/Qwen3-8B: "does not serve model"
        "  openai:\n"
        "    api_key: sk-cloud\n"
    )
    out = doctor(
        "--json",
        "-v",
        "--config",
        str(config),
        "--check",
        "config",
        "--check",
        "server",
        env={"DOCTOR_TEST_KEY": "sk-from-the-environment-0043"},
    )
    assert secret not in out.stdout + out.stderr
    assert "sk-from-the-environment-0043" not in out.stdout + out.stderr  # never expanded
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    config_checks = {c["target"]: c for c in by_id(report)["config.valid"]}
    assert set(config_checks) == {
        "vllm_primary",
        "vllm_broken",
        "vllm_env",
        "vllm_hooks",
        "vllm_short",
    }
    short = config_checks["vllm_short"]
    assert short["status"] == "warn" and "model: Qwen/Qwen3-8B" in short["hint"]
    assert config_checks["vllm_primary"]["status"] == "ok"
    assert config_checks["vllm_primary"]["details"]["api_key"] == "set"
    assert config_checks["vllm_broken"]["status"] == "fail"
    assert "`temperature`" in config_checks["vllm_broken"]["hint"]
    env_check = config_checks["vllm_env"]
    assert env_check["status"] == "fail" and env_check["details"]["keys"] == ["api_key"]
    assert "neither saigen nor this provider expands" in env_check["summary"]
    hooks_check = config_checks["vllm_hooks"]
    assert hooks_check["status"] == "fail" and "no_such_module_xyz" in hooks_check["summary"]


def test_the_example_config_loads(tmp_path: Path) -> None:
    """examples/saigen-config.yaml as a user copies it: every vLLM entry valid, its hook loads."""
    example = ROOT / "examples" / "saigen-config.yaml"
    out = doctor("--json", "--config", str(example), "--check", "config",
                 env={"PYTHONPATH": str(ROOT / "examples")})  # fmt: skip
    checks = by_id(json.loads(out.stdout))["config.valid"]
    assert checks and all(c["status"] == "ok" for c in checks), checks


def test_api_key_flag_never_printed() -> None:
    secret = "sk-flag-secret-777"
    out = doctor("-v", "--api-key", secret, "--base-url", f"http://127.0.0.1:{closed_port()}/v1")
    assert secret not in out.stdout + out.stderr
    assert out.returncode == 1
    assert "Doctor found issues" in out.stdout


def run_with_check_replaced(body: Any, ids: list[str]) -> Any:
    """Run the doctor with the check ``env.packages`` replaced by ``body``."""
    import asyncio

    from saigen_vllm.doctor import DoctorOptions, run_doctor
    from saigen_vllm.doctor.registry import CHECKS, Check, all_checks

    all_checks()  # registers every check
    index = next(i for i, c in enumerate(CHECKS) if c.id == "env.packages")
    original = CHECKS[index]
    CHECKS[index] = Check("env.packages", "replaced", body)
    try:
        return asyncio.run(run_doctor(DoctorOptions(), ids))
    finally:
        CHECKS[index] = original


def test_a_crashing_check_is_reported_and_others_run() -> None:
    async def boom(ctx: object) -> None:
        raise RuntimeError("kaboom")

    report = run_with_check_replaced(boom, ["env"])
    statuses = {r.id: r.status.value for r in report.results}
    assert statuses == {"env.python": "ok", "env.packages": "crashed"}
    assert report.exit_code == 1
    assert "kaboom" in report.results[1].summary


def test_a_check_that_times_out_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import saigen_vllm.doctor as doctor_module

    async def never(ctx: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(doctor_module, "CHECK_TIMEOUT", 0.05)
    (result,) = run_with_check_replaced(never, ["env.packages"]).results
    assert result.status.value == "fail" and "timed out after 0.05s" in result.summary
    assert "bug" not in (result.hint or "")


def test_a_prefix_does_not_run_the_generating_checks() -> None:
    out = doctor(
        "--json", "--check", "server", "--base-url", f"http://127.0.0.1:{closed_port()}/v1"
    )
    checks = by_id(json.loads(out.stdout))
    for generating in ("server.probe", "server.structured_output"):
        (result,) = checks[generating]
        assert result["status"] == "skipped" and "--probe" in result["summary"]
