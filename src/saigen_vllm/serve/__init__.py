"""``saigen-vllm serve``: catalog + hardware -> a vLLM command, unit file, container line."""

from ..settings import is_loopback
from .plan import ServePlan, ServeRefused, build_plan
from .render import cluster_commands, docker_command, print_form, shell_command, systemd_unit
from .run import CannotStart, find_launcher, run_process, run_server, wait_ready

__all__ = [
    "CannotStart",
    "ServePlan",
    "ServeRefused",
    "build_plan",
    "cluster_commands",
    "docker_command",
    "find_launcher",
    "is_loopback",
    "print_form",
    "run_process",
    "run_server",
    "shell_command",
    "systemd_unit",
    "wait_ready",
]
