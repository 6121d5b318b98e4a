"""What the checks share: the options, the configured targets, and facts found along the way."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import VLLMSettings, load_settings

if TYPE_CHECKING:
    from .._transport import ServedModel, Transport, Worker
    from ..hardware import MachineInfo

HOST_KEYS = ("priority", "enabled", "max_retries", "provider")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DoctorCannotRun(Exception):
    """The doctor itself cannot run (exit code 2): e.g. an unreadable --config file."""


@dataclass
class DoctorOptions:
    config_path: Path | None = None
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    hardware: str | None = None
    probe: bool = False
    probe_timeout: float = 60.0


@dataclass
class Target:
    """One configured vLLM provider instance: its name and settings (or why they are invalid)."""

    name: str
    settings: VLLMSettings | None
    error: str | None = None
    field: str | None = None
    env_refs: tuple[str, ...] = ()
    """Keys whose value holds a ``${VAR}`` reference: saigen sends such text as it is."""


@dataclass
class EndpointFacts:
    reachable: bool | None = None
    health: int | None = None
    served: list[ServedModel] | None = None
    needs_key: bool | None = None
    key_accepted: bool | None = None
    model: str | None = None
    max_model_len: int | None = None
    workers: list[Worker] | None = None
    """The workers when the endpoint is a vllm-router (``None``: a vLLM server)."""


@dataclass
class DoctorContext:
    options: DoctorOptions
    targets: list[Target] = field(default_factory=list)
    facts: dict[str, EndpointFacts] = field(default_factory=dict)
    transports: dict[str, Transport] = field(default_factory=dict)
    machine: MachineInfo | None = None

    def valid_targets(self) -> list[Target]:
        return [t for t in self.targets if t.settings is not None]

    def endpoints(self) -> list[tuple[Target, str]]:
        """Every (target, endpoint URL) pair, each URL once."""
        seen: set[str] = set()
        pairs: list[tuple[Target, str]] = []
        for target in self.valid_targets():
            assert target.settings is not None
            for url in target.settings.endpoint_urls:
                if url not in seen:
                    seen.add(url)
                    pairs.append((target, url))
        return pairs

    def fact(self, endpoint: str) -> EndpointFacts:
        return self.facts.setdefault(endpoint, EndpointFacts())

    def transport(self, target: Target, *, with_key: bool = True) -> Transport:
        from .._transport import Transport

        assert target.settings is not None
        key = f"{target.name}:{with_key}"
        if key not in self.transports:
            settings = target.settings.model_copy(
                update={
                    "connect_timeout": min(target.settings.connect_timeout, 3.0),
                    "stall_timeout": min(target.settings.stall_timeout, 5.0),
                    "timeout": max(self.options.probe_timeout, 5.0),
                }
            )
            if not with_key:
                settings = settings.model_copy(update={"api_key": None})
            self.transports[key] = Transport(settings)
        return self.transports[key]

    def model_name(self, target: Target) -> str | None:
        """The configured model, else the one a server of this target was found serving."""
        assert target.settings is not None
        if target.settings.model:
            return target.settings.model
        for url in target.settings.endpoint_urls:
            found = self.facts.get(url)
            if found is not None and found.model:
                return found.model
        return None

    def secrets(self) -> list[str]:
        found = [self.options.api_key or ""]
        for target in self.valid_targets():
            assert target.settings is not None
            found.append(target.settings.api_key_value() or "")
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "SAIGEN_VLLM_API_KEY"):
            found.append(os.environ.get(name, ""))
        return [secret for secret in found if secret]


def env_references(entry: dict[str, Any]) -> list[str]:
    """The keys of ``entry`` whose value (or a part of it) holds ``${VAR}``: neither saigen nor
    this provider expands them, so the text itself would be sent (the doctor does not expand
    them either: a ``${GITHUB_TOKEN}`` must not end up in its report)."""

    def holds(value: Any) -> bool:
        if isinstance(value, str):
            return _ENV_REF.search(value) is not None
        if isinstance(value, dict):
            return any(holds(v) for v in value.values())
        if isinstance(value, list):
            return any(holds(v) for v in value)
        return False

    return [str(key) for key, value in entry.items() if holds(value)]


def is_vllm_entry(name: str, entry: dict[str, Any]) -> bool:
    kind = str(entry.get("provider") or name).lower()
    return kind == "vllm" or kind.startswith("vllm_")


def _target(name: str, config: dict[str, Any], env_refs: list[str] | None = None) -> Target:
    from ..errors import InvalidConfiguration

    try:
        return Target(name, load_settings(config), env_refs=tuple(env_refs or ()))
    except InvalidConfiguration as exc:
        return Target(name, None, str(exc), exc.field, env_refs=tuple(env_refs or ()))


def build_targets(options: DoctorOptions) -> list[Target]:
    """Targets from --config (each vLLM entry of llm_providers), else from flags + environment."""
    flags = {
        key: value
        for key, value in (
            ("base_url", options.base_url),
            ("model", options.model),
            ("api_key", options.api_key),
        )
        if value
    }
    if options.config_path is None:
        return [_target("command line / environment", flags)]
    try:
        import yaml

        data = yaml.safe_load(options.config_path.read_text())
    except OSError as exc:
        raise DoctorCannotRun(
            f"cannot read --config {options.config_path}: {exc.strerror or exc}"
        ) from None
    except Exception as exc:  # yaml.YAMLError and friends: one line, where and what
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DoctorCannotRun(
            f"--config {options.config_path} is not valid YAML{where}: {problem}"
        ) from None
    providers = (data or {}).get("llm_providers") if isinstance(data, dict) else None
    if not isinstance(providers, dict):
        raise DoctorCannotRun(
            f"--config {options.config_path} has no `llm_providers` mapping (see "
            "examples/saigen-config.yaml)"
        )
    targets = []
    for name, entry in providers.items():
        if not isinstance(entry, dict) or not is_vllm_entry(str(name), entry):
            continue
        config = {k: v for k, v in entry.items() if k not in HOST_KEYS}
        config.update(flags)
        refs = [key for key in env_references(config) if key not in flags]
        targets.append(_target(str(name), config, refs))
    return targets
