"""``saigen-vllm router``: one URL in front of several vLLM servers, with vllm-router.

vllm-router (PyPI ``vllm-router``, the vLLM project's router; ``pip install
'saigen-vllm[router]'``) does the routing: cache-aware by default (every saidata prompt shares a
long prefix), with its own health checks, retries and circuit breakers. This module only builds
its command line with settings that suit a saigen fleet, prints it as a shell command or a systemd
unit, or runs it in the foreground like ``saigen-vllm serve``.

Clients authenticate to the *workers*: vllm-router forwards the client's ``Authorization`` header,
so the key saigen uses is the workers' ``--api-key``. The router itself checks no key, which is why
a router listening beyond loopback is refused unless the workers require one (``--api-key-env``).
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from .serve.run import CannotStart
from .settings import is_loopback

POLICIES = ("cache_aware", "power_of_two", "round_robin")
HEALTH_ARGS = [
    "--health-check-interval-secs", "5",  # vllm-router's default, 60 s, feeds a dead worker
    "--health-failure-threshold", "2",  # requests for minutes
    "--cb-failure-threshold", "3",  # a worker failing 3 requests is skipped at once (10)
]  # fmt: skip
"""Worker failure detection that suits a saigen batch (vllm-router's defaults in brackets)."""
ENV_FILE = "/etc/saigen-vllm/router.env"


class RouterRefused(Exception):
    """The requested router would be unsafe or cannot work; the message says why and the fix."""


def worker_url(text: str) -> str:
    """A worker's root URL as vllm-router wants it: ``http://h:8000`` (no ``/v1``)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RouterRefused(
            f"worker {text!r} is not an http:// or https:// URL with a host. Fix: give each "
            "vLLM server as http://HOST:PORT (its /v1 may be left on)."
        )
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class RouterPlan:
    workers: list[str]
    host: str = "127.0.0.1"
    port: int = 8080
    policy: str = "cache_aware"
    prometheus_port: int | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{shown}:{self.port}/v1"

    def router_args(self) -> list[str]:
        args = [
            "--host", self.host, "--port", str(self.port),
            "--worker-urls", *self.workers,
            "--policy", self.policy,
            *HEALTH_ARGS,
        ]  # fmt: skip
        if self.prometheus_port is not None:
            args += ["--prometheus-port", str(self.prometheus_port)]
        return args + self.extra_args


def build_router_plan(
    workers: list[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    policy: str = "cache_aware",
    workers_need_key: bool = False,
    prometheus_port: int | None = None,
    extra_args: list[str] | None = None,
) -> RouterPlan:
    if not workers:
        raise RouterRefused("no worker given. Fix: name each vLLM server, e.g. http://gb10-a:8000")
    if policy not in POLICIES:
        raise RouterRefused(f"unknown policy {policy!r}. Fix: use one of {', '.join(POLICIES)}")
    urls = list(dict.fromkeys(worker_url(w) for w in workers))
    if not is_loopback(host) and not workers_need_key:
        raise RouterRefused(
            f"the router would listen on {host} and pass anyone's requests to the workers, which "
            "require no key. Fix: start the workers with an API key (`saigen-vllm serve MODEL "
            "--api-key ...`) and pass --api-key-env VAR naming it, or keep --host 127.0.0.1."
        )
    return RouterPlan(
        workers=urls,
        host=host,
        port=port,
        policy=policy,
        prometheus_port=prometheus_port,
        extra_args=list(extra_args or []),
    )


def find_router() -> list[str]:
    found = shutil.which("vllm-router")
    if found is None:
        raise CannotStart(
            "vllm-router is not installed here. Fix: pip install 'saigen-vllm[router]' "
            "(or pip install vllm-router)."
        )
    return [found]


def shell_command(plan: RouterPlan, launcher: list[str] | None = None) -> str:
    return " ".join(shlex.quote(p) for p in (launcher or ["vllm-router"]) + plan.router_args())


def print_form(plan: RouterPlan, key_env: str | None) -> str:
    lines = [
        f"# {len(plan.workers)} workers behind {plan.base_url} (policy {plan.policy})",
        "# saigen: base_url: " + plan.base_url,
    ]
    if key_env:
        lines.append(f"# clients send the workers' key (saigen's api_key = ${key_env}); the router")
        lines.append("# forwards it. The router itself checks none: firewall its port.")
    lines.append(shell_command(plan))
    return "\n".join(lines)


def systemd_unit(plan: RouterPlan, launcher: list[str]) -> str:
    return f"""# /etc/systemd/system/saigen-vllm-router.service
[Unit]
Description=vllm-router for saigen ({len(plan.workers)} vLLM workers)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
DynamicUser=yes
ExecStart={shell_command(plan, launcher)}
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def docker_command(plan: RouterPlan, version: str) -> str:
    """vllm-router publishes wheels, not an image: a slim Python image installs the pinned wheel
    at start (needs the package index). Host networking: the workers' URLs and the bind address
    mean what they mean on the host, and a loopback plan stays on loopback."""
    script = f"pip install -q vllm-router=={version} && exec {shell_command(plan)}"
    return (
        "docker run --rm --name saigen-vllm-router --network host python:3.12-slim sh -c "
        + shlex.quote(script)
    )
