"""saigen-vllm serve: golden command lines per hardware, refusals, container/unit/cluster forms."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from saigen_vllm.catalog import load_catalog
from saigen_vllm.cli import main
from saigen_vllm.serve import ServeRefused, build_plan, is_loopback

CATALOG = load_catalog()


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["serve", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (
            ["meta-llama/Llama-3.1-8B-Instruct", "--hardware", "gb10", "--print"],
            "vllm serve nvidia/Llama-3.1-8B-Instruct-NVFP4 --served-model-name "
            "meta-llama/Llama-3.1-8B-Instruct --host 127.0.0.1 --port 8000 --max-model-len 16384 "
            "--max-num-seqs 44 --gpu-memory-utilization 0.8 --tensor-parallel-size 1",
        ),
        (
            [
                "meta-llama/Llama-3.3-70B-Instruct",
                "--hardware",
                "gb10x2",
                "--precision",
                "bf16",
                "--context",
                "8192",
                "--concurrency",
                "8",
                "--print",
            ],
            "vllm serve meta-llama/Llama-3.3-70B-Instruct --served-model-name "
            "meta-llama/Llama-3.3-70B-Instruct --host 127.0.0.1 --port 8000 --max-model-len 8192 "
            "--max-num-seqs 8 --gpu-memory-utilization 0.8 --tensor-parallel-size 2",
        ),
        (
            [
                "Qwen/Qwen3-32B",
                "--hardware",
                "h100",
                "--precision",
                "nvfp4",
                "--context",
                "32768",
                "--print",
            ],
            "vllm serve nvidia/Qwen3-32B-NVFP4 --served-model-name Qwen/Qwen3-32B --host "
            "127.0.0.1 --port 8000 --max-model-len 32768 --max-num-seqs 6 "
            "--gpu-memory-utilization 0.9 --tensor-parallel-size 1",
        ),
        (
            ["Qwen/Qwen3-8B", "--hardware", "rtx4090", "--concurrency", "8", "--print"],
            "vllm serve nvidia/Qwen3-8B-NVFP4 --served-model-name Qwen/Qwen3-8B --host 127.0.0.1 "
            "--port 8000 --max-model-len 16384 --max-num-seqs 8 --gpu-memory-utilization 0.9 "
            "--tensor-parallel-size 1 --kv-cache-dtype fp8",
        ),
    ],
)
def test_golden_command_lines(args: list[str], golden: str) -> None:
    code, out, _ = serve(*args)
    assert code == 0, out
    assert out.strip().splitlines()[-1] == golden


def test_gb10_llama_8b_done_when() -> None:
    code, out, _ = serve("meta-llama/Llama-3.1-8B-Instruct", "--hardware", "gb10", "--print")
    command = out.strip().splitlines()[-1].split()
    assert code == 0
    assert float(command[command.index("--gpu-memory-utilization") + 1]) <= 0.87
    assert "--max-model-len" in command
    assert command[command.index("--tensor-parallel-size") + 1] == "1"


def test_too_big_refuses_and_names_a_variant_that_fits() -> None:
    code, _, err = serve(
        "meta-llama/Llama-3.3-70B-Instruct", "--precision", "bf16", "--hardware", "gb10", "--print"
    )
    assert code == 1
    assert "does not fit" in err and "141.1 GB" in err
    assert "nvidia/Llama-3.3-70B-Instruct-NVFP4" in err


def test_public_bind_without_key_refuses() -> None:
    code, _, err = serve(
        "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "gb10", "--host", "0.0.0.0", "--print"
    )
    assert code == 1 and "without an API key" in err


def test_public_bind_with_key_keeps_key_out_of_argv() -> None:
    key = "sk-serve-secret-1234"
    code, out, _ = serve(
        "meta-llama/Llama-3.1-8B-Instruct",
        "--hardware",
        "gb10",
        "--host",
        "0.0.0.0",
        "--print",
        env={"SAIGEN_VLLM_API_KEY": key},
    )
    assert code == 0
    assert key not in out
    assert "export VLLM_API_KEY=" in out and "--api-key" not in out.splitlines()[-1]


def test_generate_api_key_prints_once_and_saves_0600(tmp_path: Path) -> None:
    code, out, err = serve(
        "Qwen/Qwen3-8B",
        "--hardware",
        "gb10",
        "--host",
        "0.0.0.0",
        "--generate-api-key",
        "--print",
        env={"XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert code == 0
    saved = tmp_path / "saigen-vllm" / "api_key.env"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    key = saved.read_text().splitlines()[0].split("=", 1)[1]
    assert len(key) >= 32
    assert err.count(key) == 1 and key not in out


def test_docker_systemd_and_cluster_forms() -> None:
    _, docker, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--docker")
    assert "nvcr.io/nvidia/vllm:" in docker and "--gpus all" in docker
    assert "--env-file /etc/saigen-vllm/vllm.env" in docker
    assert "-p 127.0.0.1:8000:8000" in docker and "--host 0.0.0.0" in docker
    _, unit, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--systemd")
    assert "Restart=on-failure" in unit and "EnvironmentFile=/etc/saigen-vllm/vllm.env" in unit
    assert "mode 0600" in unit and "ExecStart=/" in unit
    _, cluster, _ = serve("meta-llama/Llama-3.3-70B-Instruct", "--cluster", "2")
    assert "ray start --head" in cluster and "RAY_memory_monitor_refresh_ms=0" in cluster
    assert "--tensor-parallel-size 2" in cluster and "--distributed-executor-backend ray" in cluster


def test_extra_flags_pass_through_after_double_dash() -> None:
    code, out, _ = serve(
        "Qwen/Qwen3-8B",
        "--hardware",
        "gb10",
        "--print",
        "--",
        "--enable-prefix-caching",
        "--seed",
        "7",
    )
    assert code == 0
    assert out.strip().endswith("--enable-prefix-caching --seed 7")


def test_unknown_model_is_served_without_sizing() -> None:
    plan = build_plan(CATALOG, "/models/my-finetune", hardware=None, context=4096, concurrency=2)
    assert plan.notes and "not in the catalog" in plan.notes[0]
    assert plan.vllm_args()[:1] == ["/models/my-finetune"]
    assert plan.gpu_memory_utilization is None


def test_never_a_tensor_parallel_size_that_does_not_divide_heads() -> None:
    for model in CATALOG.models:
        try:
            plan = build_plan(CATALOG, model.id, hardware="gb10x2", concurrency=1, context=4096)
        except ServeRefused:
            continue
        assert model.attention_heads % plan.tensor_parallel_size == 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.0.2.4", False),
        ("gb10.lan", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_wait_ready_times_out_with_last_error() -> None:
    from tests.support.fault_server import closed_port

    result = CliRunner().invoke(
        main, ["wait-ready", f"http://127.0.0.1:{closed_port()}/v1", "--timeout", "1.5"]
    )
    assert result.exit_code == 1
    assert "not ready after 1.5s" in result.stderr and "Connect" in result.stderr


def test_gated_model_without_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    code, _, err = serve(
        "meta-llama/Llama-3.1-8B-Instruct",
        "--hardware",
        "gb10",
        "--precision",
        "bf16",
        "--vllm-python",
        "/bin/true",
        "--no-gpu-check",
    )
    assert code == 1 and "gated" in err and "HF_TOKEN" in err
    assert json  # keep the import used


def test_exec_without_gpu_refuses() -> None:
    code, _, err = serve(
        "Qwen/Qwen3-8B",
        "--hardware",
        "gb10",
        "--vllm-python",
        "/bin/true",
        env={"SAIGEN_VLLM_NVIDIA_SMI": "/nonexistent/nvidia-smi"},
    )
    assert code == 1 and "no NVIDIA GPU" in err
    assert os.environ.get("SAIGEN_VLLM_NVIDIA_SMI") is None
