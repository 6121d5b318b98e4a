"""saigen-vllm serve: golden command lines per hardware, refusals, container/unit/cluster forms."""

from __future__ import annotations

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
            "meta-llama/Llama-3.1-8B-Instruct nvidia/Llama-3.1-8B-Instruct-NVFP4 --host 127.0.0.1 "
            "--port 8000 --max-model-len 16384 --max-num-seqs 44 --gpu-memory-utilization 0.8 "
            "--tensor-parallel-size 1",
        ),
        (
            [
                "meta-llama/Llama-3.3-70B-Instruct",
                "--cluster",
                "2",
                "--precision",
                "bf16",
                "--context",
                "8192",
                "--concurrency",
                "8",
            ],
            "docker exec saigen-vllm-ray vllm serve meta-llama/Llama-3.3-70B-Instruct "
            "--served-model-name meta-llama/Llama-3.3-70B-Instruct --host 127.0.0.1 --port 8000 "
            "--max-model-len 8192 --max-num-seqs 8 --gpu-memory-utilization 0.8 "
            "--tensor-parallel-size 2 --distributed-executor-backend ray",
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
            "vllm serve nvidia/Qwen3-32B-NVFP4 --served-model-name Qwen/Qwen3-32B "
            "nvidia/Qwen3-32B-NVFP4 --host 127.0.0.1 --port 8000 --max-model-len 32768 "
            "--max-num-seqs 6 --gpu-memory-utilization 0.92 --tensor-parallel-size 1 "
            "--reasoning-parser qwen3",
        ),
        (
            ["Qwen/Qwen3-8B", "--hardware", "rtx4090", "--concurrency", "8", "--print"],
            "vllm serve nvidia/Qwen3-8B-NVFP4 --served-model-name Qwen/Qwen3-8B "
            "nvidia/Qwen3-8B-NVFP4 --host 127.0.0.1 --port 8000 --max-model-len 16384 "
            "--max-num-seqs 8 --gpu-memory-utilization 0.92 --tensor-parallel-size 1 "
            "--kv-cache-dtype fp8 --reasoning-parser qwen3",
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


def test_docker_form_keeps_a_loopback_plan_on_loopback() -> None:
    _, docker, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--docker")
    assert "nvcr.io/nvidia/vllm:" in docker and "--gpus all" in docker
    assert "--network host" in docker and "--host 127.0.0.1" in docker
    assert " -p " not in docker and "0.0.0.0" not in docker
    # secrets by name only: the values stay in the caller's environment
    assert "-e VLLM_API_KEY -e HF_TOKEN" in docker and "--env-file" not in docker


def test_systemd_unit_runs_as_a_dedicated_user_with_hardening(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)  # no vLLM on the host
    _, unit, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--systemd")
    assert "User=saigen-vllm" in unit and "NoNewPrivileges=true" in unit
    assert "ProtectSystem=strict" in unit and "EnvironmentFile=/etc/saigen-vllm/vllm.env" in unit
    assert "ExecStart=/usr/bin/docker run" in unit and "SupplementaryGroups=docker" in unit
    assert "install -d -m 700 /etc/saigen-vllm" in unit  # the folder before the file
    assert unit.index("install -d") < unit.index("install -m 600")
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/vllm/bin/vllm")
    _, host_unit, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--systemd")
    assert "ExecStart=/opt/vllm/bin/vllm serve nvidia/Qwen3-8B-NVFP4" in host_unit
    assert "User=saigen-vllm" in host_unit and "HF_HOME=/var/lib/saigen-vllm" in host_unit
    _, both, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--systemd", "--docker")
    assert "ExecStart=/usr/bin/docker run" in both  # --docker --systemd: the container's unit


def test_cluster_recipe_follows_the_playbook_and_locks_ray_down() -> None:
    code, cluster, _ = serve(
        "meta-llama/Llama-3.3-70B-Instruct", "--cluster", "2", "--head-ip", "192.168.100.10"
    )
    assert code == 0
    for needed in (
        "NCCL_SOCKET_IFNAME=$MN_IF_NAME",
        "GLOO_SOCKET_IFNAME=$MN_IF_NAME",
        "UCX_NET_DEVICES=$MN_IF_NAME",
        "-e VLLM_HOST_IP",
        "--network host",
        "export HEAD_IP=192.168.100.10",
        "RAY_AUTH_MODE=token",
        "--node-ip-address=$VLLM_HOST_IP",
        "--dashboard-host=127.0.0.1",
        "ray[default]",
        "on BOTH nodes",
        "ufw",
        "RAY_memory_monitor_refresh_ms=0",
        "--distributed-executor-backend ray",
    ):
        assert needed in cluster, needed


def test_cluster_keeps_the_key_rule() -> None:
    code, _, err = serve("Qwen/Qwen3-32B", "--cluster", "2", "--host", "0.0.0.0")
    assert code == 1 and "without an API key" in err
    key = "sk-cluster-key-77"
    code, out, err = serve(
        "Qwen/Qwen3-32B", "--cluster", "2", "--host", "0.0.0.0", env={"SAIGEN_VLLM_API_KEY": key}
    )
    assert code == 0 and key not in out + err
    assert "-e VLLM_API_KEY" in out and "--host 0.0.0.0" in out


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--hardware", "gb10x2", "--print"], 1, "--cluster 2"),
        (["--cluster", "2", "--systemd"], 2, "no systemd form"),
        (["--cluster", "2", "--hardware", "gb10"], 1, "gb10x2"),
    ],
)
def test_two_machines_need_the_cluster_recipe(args: list[str], code: int, says: str) -> None:
    got, _, err = serve("Qwen/Qwen3-32B", *args)
    assert got == code and says in err


@pytest.mark.parametrize("extra", [["--host", "0.0.0.0"], ["--host=0.0.0.0"], ["--host", "::"]])
def test_a_host_among_the_vllm_flags_meets_the_bind_rule(extra: list[str]) -> None:
    code, _, err = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--print", "--", *extra)
    assert code == 1 and "without an API key" in err


def test_the_last_host_among_the_vllm_flags_is_the_one_planned() -> None:
    code, out, _ = serve(
        "Qwen/Qwen3-8B", "--hardware", "gb10", "--print", "--", "--host=127.0.0.2", "--port", "9"
    )
    command = out.strip().splitlines()[-1]
    assert code == 0 and command.count("--host") == 1 and "--host 127.0.0.2 --port 9" in command


@pytest.mark.parametrize("extra", [["--api-key", "sk-argv-9"], ["--api-key=sk-argv-9"]])
def test_a_key_among_the_vllm_flags_is_refused_and_not_printed(extra: list[str]) -> None:
    code, out, err = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--print", "--", *extra)
    assert code == 1 and "SAIGEN_VLLM_API_KEY" in err and "sk-argv-9" not in out + err


def test_api_key_on_the_command_line_is_a_usage_error() -> None:
    code, out, err = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--print", "--api-key", "sk-ps")
    assert code == 2 and "ps" in err and "sk-ps" not in out + err


def test_api_key_file_is_read_and_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("SAIGEN_VLLM_API_KEY=sk-from-file-31\n")
    path.chmod(0o600)
    code, out, err = serve(
        "Qwen/Qwen3-8B", "--hardware", "gb10", "--host", "0.0.0.0", "--print",
        "--api-key-file", str(path),
    )  # fmt: skip
    assert code == 0 and "sk-from-file-31" not in out + err
    path.chmod(0o644)
    code, _, err = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--api-key-file", str(path))
    assert code == 2 and "chmod 600" in err


def test_the_model_named_is_the_model_loaded() -> None:
    code, out, _ = serve("nvidia/Llama-3.1-8B-Instruct-FP8", "--hardware", "gb10", "--print")
    command = out.strip().splitlines()[-1]
    assert code == 0 and command.startswith("vllm serve nvidia/Llama-3.1-8B-Instruct-FP8 ")
    # the name given comes first; the catalog id works too
    assert (
        "--served-model-name nvidia/Llama-3.1-8B-Instruct-FP8 meta-llama/Llama-3.1-8B-Instruct "
        in command
    )
    code, _, err = serve(
        "nvidia/Llama-3.1-8B-Instruct-FP8", "--hardware", "gb10", "--precision", "nvfp4", "--print"
    )
    assert code == 1 and "fp8 variant" in err


def test_reasoning_parser_from_the_catalog_unless_given() -> None:
    _, out, _ = serve("Qwen/Qwen3-8B", "--hardware", "gb10", "--print")
    assert out.strip().endswith("--reasoning-parser qwen3")
    _, out, _ = serve(
        "Qwen/Qwen3-8B", "--hardware", "gb10", "--print", "--", "--reasoning-parser", "deepseek_r1"
    )
    assert out.count("--reasoning-parser") == 1 and "deepseek_r1" in out
    _, out, _ = serve("openai/gpt-oss-20b", "--hardware", "gb10", "--print")
    assert "--reasoning-parser openai_gptoss" in out
    _, out, _ = serve("meta-llama/Llama-3.1-8B-Instruct", "--hardware", "gb10", "--print")
    assert "--reasoning-parser" not in out


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
    planned = 0
    for model in CATALOG.models:
        try:
            plan = build_plan(
                CATALOG, model.id, hardware="gb10x2", concurrency=1, context=4096, cluster=True
            )
        except ServeRefused:
            continue
        planned += 1
        assert model.attention_heads % plan.tensor_parallel_size == 0
    assert planned >= len(CATALOG.models) - 2  # the check ran on (nearly) every model


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


def test_gated_model_without_token_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no token file there
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
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
