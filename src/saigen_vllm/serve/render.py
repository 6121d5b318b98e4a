"""The ways to run a plan: a shell command, a Docker (NGC) command, a systemd unit (host vLLM or
the container, as a dedicated user), the two-GB10 Ray recipe. API keys go through the
environment (VLLM_API_KEY, an env file readable only by root for systemd), never argv."""

from __future__ import annotations

import shlex

from ..settings import is_loopback
from .plan import ServePlan

NGC_IMAGE = "nvcr.io/nvidia/vllm:26.05.post1-py3"
"""NVIDIA's vLLM container for DGX Spark (aarch64, CUDA 13); PyPI vllm on the Spark has pulled a
CPU-only torch."""
ENV_FILE = "/etc/saigen-vllm/vllm.env"
SERVICE_USER = "saigen-vllm"
STATE_DIR = "/var/lib/saigen-vllm"
CONTAINER = "saigen-vllm"
RAY_CONTAINER = "saigen-vllm-ray"
LINK_INTERFACE = "enp1s0f1np1"
"""The QSFP port NVIDIA's two-Spark playbook cables (``ip -br addr`` shows the one in use)."""
SECRET_ENV = ("VLLM_API_KEY", "HF_TOKEN")
"""Passed to containers by name (``-e NAME``): the value stays in the environment."""


def _join(argv: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def shell_command(plan: ServePlan, launcher: list[str] | None = None) -> str:
    return _join((launcher or ["vllm", "serve"]) + plan.vllm_args())


def _key_lines(plan: ServePlan, api_key_set: bool) -> list[str]:
    lines = []
    if api_key_set:
        lines.append("# vLLM reads the key from the environment, never the command line:")
        lines.append("export VLLM_API_KEY=...   # the key you gave; saigen needs the same one")
    if plan.gated:
        lines.append(f"# {plan.model} is gated: export HF_TOKEN=... after accepting its licence")
    return lines


def print_form(plan: ServePlan, api_key_set: bool) -> str:
    lines = [f"# {note}" for note in plan.notes] + _key_lines(plan, api_key_set)
    lines.append(shell_command(plan))
    return "\n".join(lines)


def _container_argv(plan: ServePlan, cache: str, *, name: str = CONTAINER) -> list[str]:
    """``docker run`` of the NGC image on the host network: vLLM binds exactly the plan's host
    (a loopback plan stays unreachable from other containers and machines)."""
    argv = ["docker", "run", "--rm", "--name", name, "--gpus", "all", "--ipc=host"]
    argv += ["--network", "host", "-v", f"{cache}:/root/.cache/huggingface"]
    for variable in SECRET_ENV:
        argv += ["-e", variable]
    return [*argv, NGC_IMAGE, "vllm", "serve", *plan.vllm_args()]


def docker_command(plan: ServePlan, api_key_set: bool = False) -> str:
    lines = [f"# {note}" for note in plan.notes] + _key_lines(plan, api_key_set)
    argv = _container_argv(plan, "$HOME/.cache/huggingface")
    rendered = " ".join(
        '"$HOME/.cache/huggingface:/root/.cache/huggingface"' if "$HOME" in p else shlex.quote(p)
        for p in argv
    )
    lines.append("# --network host: vLLM listens on " + plan.host + " of this machine, as planned")
    lines.append(rendered)
    return "\n".join(lines)


_HARDENING = """NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
RestrictRealtime=true
LockPersonality=true"""


def systemd_unit(plan: ServePlan, launcher: list[str] | None, env_file: str = ENV_FILE) -> str:
    """A unit running vLLM as the dedicated user ``saigen-vllm`` with systemd's sandboxing:
    the host's vLLM when ``launcher`` is given, else the NGC container."""
    if launcher is None:
        how = f"the NGC container ({NGC_IMAGE})"
        start = _join(_container_argv(plan, STATE_DIR))
        docker = "/usr/bin/docker"
        start = start.replace("docker run", f"{docker} run", 1)
        extra = (
            "SupplementaryGroups=docker\n"
            f"ExecStartPre=-{docker} rm -f {CONTAINER}\n"
            f"ExecStop={docker} stop {CONTAINER}"
        )
    else:
        how = f"vLLM installed on this machine ({launcher[0]})"
        start = shell_command(plan, launcher)
        extra = f"Environment=HOME={STATE_DIR} HF_HOME={STATE_DIR}/huggingface"
    return f"""# /etc/systemd/system/saigen-vllm.service: {how}
# as the unprivileged user {SERVICE_USER}, weights in {STATE_DIR}. Once, as root:
#   useradd --system --home-dir {STATE_DIR} --shell /usr/sbin/nologin {SERVICE_USER}
#   install -d -m 700 /etc/saigen-vllm
#   install -m 600 /dev/null {env_file}    # then write VLLM_API_KEY=... (and HF_TOKEN=...) in it
#   systemctl daemon-reload && systemctl enable --now saigen-vllm
[Unit]
Description=vLLM server for saigen ({plan.served_model_name})
After=network-online.target{" docker.service" if launcher is None else ""}
Wants=network-online.target

[Service]
Type=simple
User={SERVICE_USER}
Group={SERVICE_USER}
StateDirectory=saigen-vllm
StateDirectoryMode=0700
EnvironmentFile={env_file}
{extra}
ExecStartPre=+/bin/sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'
ExecStart={start}
Restart=on-failure
RestartSec=30
TimeoutStartSec=1800
LimitNOFILE=65536
{_HARDENING}

[Install]
WantedBy=multi-user.target
"""


def cluster_commands(
    plan: ServePlan,
    *,
    head_ip: str | None = None,
    worker_ip: str | None = None,
    interface: str = LINK_INTERFACE,
) -> str:
    """The two-GB10 recipe of NVIDIA's dgx-spark-playbooks (vLLM on two Sparks) and vLLM's
    ``run_cluster.sh``: one container per node on the host network, every interface variable on
    the QSFP link, Ray bound to that link with token auth, then ``vllm serve`` on the head."""
    head = head_ip or "<head-link-ip>"
    worker = worker_ip or "<worker-link-ip>"
    env = [
        "-e VLLM_HOST_IP",
        "-e MASTER_ADDR=$HEAD_IP",
        *(
            f"-e {name}=$MN_IF_NAME"
            for name in (
                "NCCL_SOCKET_IFNAME",
                "GLOO_SOCKET_IFNAME",
                "TP_SOCKET_IFNAME",
                "UCX_NET_DEVICES",
                "OMPI_MCA_btl_tcp_if_include",
            )
        ),
        "-e RAY_memory_monitor_refresh_ms=0",
        "-e RAY_AUTH_MODE=token",
        "-e RAY_AUTH_TOKEN_PATH=/root/.ray/auth_token",
        *(f"-e {name}" for name in SECRET_ENV),
    ]
    run = (
        f"docker run -d --rm --name {RAY_CONTAINER} --gpus all --ipc=host --network host "
        "--shm-size 10.35g \\\n  "
        '-v "$HOME/.cache/huggingface:/root/.cache/huggingface" '
        '-v "$HOME/.ray/auth_token:/root/.ray/auth_token:ro" \\\n  '
        + " ".join(env)
        + f" \\\n  {NGC_IMAGE} \\\n  bash -c "
    )
    install_ray = "pip install -q 'ray[default]>=2.52' && "
    head_start = run + shlex.quote(
        install_ray + "ray start --block --head --node-ip-address=$VLLM_HOST_IP --port=6379 "
        "--dashboard-host=127.0.0.1"
    )
    worker_start = run + shlex.quote(
        install_ray + "ray start --block --address=$MASTER_ADDR:6379 "
        "--node-ip-address=$VLLM_HOST_IP"
    )
    # the container's own shell expands $VLLM_HOST_IP / $MASTER_ADDR (single quotes above)
    serve = _join(["docker", "exec", RAY_CONTAINER, "vllm", "serve", *plan.vllm_args()])
    exposed = (
        f"only from this machine ({plan.host})"
        if is_loopback(plan.host)
        else f"on {plan.host} with the key: allow port {plan.port} only from saigen's machines"
    )
    return f"""# Two GB10s (DGX Spark) over their ConnectX-7 QSFP link: NVIDIA's dgx-spark-playbooks
# "vLLM on two Sparks" recipe and vLLM's run_cluster.sh, with Ray locked down.
#
# 0. Both nodes, before anything else:
#    - the QSFP cable between the Sparks and its link up (playbook "Connect two Sparks");
#      `ping <the other node's link ip>` answers over it
#    - the same container image: docker pull {NGC_IMAGE}
#    - the same weights in ~/.cache/huggingface on BOTH nodes (nothing is copied for you):
#      hf download {plan.model}
#    - a firewall that lets Ray's ports (6379, 8265, 10001 and the worker ports) in only from
#      the other node's link address; Ray runs any code sent to it:
#        sudo ufw default deny incoming
#        sudo ufw allow in on $MN_IF_NAME from <the other node's link ip>
#    - on the head, vLLM's port {plan.port}: {exposed}
#
# 1. Both nodes: the link and this node's address on it
export MN_IF_NAME={interface}   # the QSFP interface cabled to the other Spark (ip -br addr)
export HEAD_IP={head}
export VLLM_HOST_IP={head}      # on the worker: export VLLM_HOST_IP={worker}
#
# 2. Ray token auth (Ray >= 2.52): make one token on the head, copy it to the worker
mkdir -p -m 700 ~/.ray
(umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > ~/.ray/auth_token)
#    then, from the head: scp -p ~/.ray/auth_token <worker>:.ray/auth_token
#
# 3. Head node (export VLLM_API_KEY=... first when the plan needs a key, HF_TOKEN for gated models):
{head_start}
#
# 4. Worker node:
{worker_start}
#
# 5. Head node, once `docker exec {RAY_CONTAINER} ray status` shows 2 GPUs (the first start
#    loads the weights on both nodes: allow several minutes):
{serve}"""
