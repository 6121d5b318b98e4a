"""The ways to run a plan: a shell command, a Docker (NGC) command, a systemd unit, the two-GB10
Ray recipe. API keys go through the environment (an env file readable only by root), never argv."""

from __future__ import annotations

import shlex

from .plan import ServePlan

NGC_IMAGE = "nvcr.io/nvidia/vllm:26.05.post1-py3"
"""NVIDIA's vLLM container for DGX Spark (aarch64, CUDA 13); PyPI vllm on the Spark has pulled a
CPU-only torch."""
ENV_FILE = "/etc/saigen-vllm/vllm.env"


def shell_command(plan: ServePlan, launcher: list[str] | None = None) -> str:
    argv = (launcher or ["vllm", "serve"]) + plan.vllm_args()
    return " ".join(shlex.quote(part) for part in argv)


def print_form(plan: ServePlan, api_key_set: bool) -> str:
    lines = [f"# {note}" for note in plan.notes]
    if api_key_set:
        lines.append("# the API key is read from the environment, not the command line:")
        lines.append("export VLLM_API_KEY=...   # the key you gave; saigen needs the same one")
    if plan.gated:
        lines.append(f"# {plan.model} is gated: export HF_TOKEN=... after accepting its licence")
    lines.append(shell_command(plan))
    return "\n".join(lines)


def docker_command(plan: ServePlan, env_file: str = ENV_FILE) -> str:
    publish_host = "127.0.0.1" if plan.host in ("127.0.0.1", "localhost") else plan.host
    # inside the container vLLM listens on all its interfaces; -p publishes only plan.host
    inner = ServePlan(**{**plan.__dict__, "host": "0.0.0.0", "port": 8000})  # noqa: S104
    parts = [
        "docker",
        "run",
        "--rm",
        "--name",
        "saigen-vllm",
        "--gpus",
        "all",
        "--ipc=host",
        "-p",
        f"{publish_host}:{plan.port}:8000",
        "-v",
        "$HOME/.cache/huggingface:/root/.cache/huggingface",
        "--env-file",
        env_file,
        NGC_IMAGE,
        "vllm",
        "serve",
        *inner.vllm_args(),
    ]
    rendered = " ".join(p if p.startswith("$HOME") else shlex.quote(p) for p in parts)
    return (
        f"# {env_file} (chmod 600) holds VLLM_API_KEY=... and HF_TOKEN=... for gated models\n"
        f"{rendered}"
    )


def systemd_unit(plan: ServePlan, launcher: list[str], env_file: str = ENV_FILE) -> str:
    command = shell_command(plan, launcher)
    return f"""# /etc/systemd/system/saigen-vllm.service
# {env_file}: VLLM_API_KEY=... (and HF_TOKEN=...), owned by root, mode 0600:
#   install -m 600 -o root -g root /dev/null {env_file}
[Unit]
Description=vLLM server for saigen ({plan.served_model_name})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile={env_file}
ExecStartPre=/bin/sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'
ExecStart={command}
Restart=on-failure
RestartSec=10
TimeoutStartSec=900
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


def cluster_commands(plan: ServePlan, head_address: str = "<head-ip>") -> str:
    args = [*plan.vllm_args(), "--distributed-executor-backend", "ray"]
    serve = " ".join(shlex.quote(a) for a in ["vllm", "serve", *args])
    return f"""# Two GB10s over ConnectX-7 (NVIDIA's dgx-spark-playbooks recipe), in the NGC
# container on both machines ({NGC_IMAGE};
# the 26.05 image lacks Ray: pip install 'ray[default]').
# 1. on the head node:
RAY_memory_monitor_refresh_ms=0 ray start --head --port=6379
# 2. on the worker node:
RAY_memory_monitor_refresh_ms=0 ray start --address={head_address}:6379
# 3. on the head node, once `ray status` shows 2 GPUs:
{serve}"""
