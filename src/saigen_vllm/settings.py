"""Configuration: one pydantic-settings class fed by the host's dict, the environment, and defaults.

Precedence, highest first:

1. the provider's entry under ``llm_providers`` in the host's config (the dict it is given);
2. environment variables ``SAIGEN_VLLM_<KEY>`` (``VLLM_API_KEY`` too, for ``api_key``);
3. the defaults below, which fit a GB10 serving vLLM on localhost.

Invalid values raise :class:`~saigen_vllm.errors.InvalidConfiguration` naming the key, the value
(never a secret) and the fix. Unknown keys are logged as a warning.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ._redact import redact_url, redact_urls
from .errors import InvalidConfiguration

logger = logging.getLogger("saigen_vllm")

ENV_PREFIX = "SAIGEN_VLLM_"
HOST_KEYS = frozenset({"priority", "enabled", "provider"})
"""Keys the host's provider manager uses itself; accepted and ignored here."""
ALIASES = {"api_base": "base_url"}
SECRET_FIELDS = frozenset({"api_key"})

RESERVED_BODY: dict[str, str] = {
    "model": "set the provider's `model`",
    "messages": "the prompt is saigen's",
    "max_tokens": "set the provider's `max_tokens` (it is clamped to fit the context)",
    "max_completion_tokens": "set the provider's `max_tokens`",
    "temperature": "set the provider's `temperature`",
    "stream": "generations are always streamed (the liveness watch needs it)",
    "stream_options": "usage is always requested",
    "response_format": "set `structured_output` or `response_schema`",
    "n": "one reply per request (n other than 1 would be joined into one reply)",
}
"""Request fields ``extra_body`` may not set, and the key that sets each properly."""

FIXES: dict[str, str] = {
    "base_url": "use the server's OpenAI-compatible URL, e.g. http://localhost:8000/v1",
    "endpoints": "list further base URLs, e.g. [http://gb10-b:8000/v1], or mappings such as "
    "{url: http://gb10-b:8000/v1, weight: 2, max_in_flight: 32}",
    "routing": "use `balanced` (fewest requests in flight) or `ordered` (primary, then backups)",
    "max_in_flight": "use a whole number of concurrent requests per endpoint from 1 up, e.g. the "
    "server's --max-num-seqs, or leave it out for no limit",
    "progress_timeout": "give the seconds a server may make no progress at all before a request "
    "on it is given up, above 0, e.g. 15",
    "usage_log": "give a file path to append one JSON line per response to, or leave it out",
    "structured_output": "use `auto` (the saidata schema when known), `json_schema`, "
    "`json_object`, or `off`",
    "response_schema": "give the path of a JSON schema file (a JSON object), or leave it out to "
    "use saigen's own saidata schema",
    "model": "use the name the server serves (see `saigen-vllm doctor`), or leave it out to use it",
    "api_key": "set the key the server was started with (--api-key), or leave it out",
    "temperature": "use a number from 0 to 2 (0.1 suits saidata)",
    "max_tokens": "use a whole number of output tokens from 1 up, e.g. 4096",
    "timeout": "give the seconds one generation may take, a number above 0, e.g. 600",
    "connect_timeout": "give the seconds to wait for a connection, above 0 and at most `timeout`",
    "stall_timeout": "give the seconds a stream may stay silent, above 0, e.g. 90",
    "headers_timeout": "give the seconds until vLLM starts its answer, above 0, e.g. 10",
    "max_retries": "use a whole number from 0 to 10",
    "retry_max_delay": "give the total seconds retries may wait, 0 or more, e.g. 30",
    "circuit_failure_threshold": "use a whole number of failures from 1 up, e.g. 3",
    "circuit_cooldown": "give the seconds an open circuit waits before probing, above 0",
    "hooks": "list dotted paths to callables or hook objects, e.g. [mypkg.hooks:log_to_file]",
    "extra_body": "give a mapping of extra vLLM request fields, e.g. {top_k: 20}, without the "
    "fields the client sets itself",
    "verify": "use true, false, or the path of an existing CA bundle file",
    "tensor_parallel_size": "use a whole number from 1 up (1 on one GB10, 2 across two)",
    "gpu_memory_utilization": "use a fraction above 0 and below 1, e.g. 0.8 on a GB10",
}


def _normalize_url(value: str) -> str:
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"has an invalid port ({exc})") from None
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class EndpointSpec(BaseModel):
    """One server: its base URL, its share of the load, and how many requests it may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    weight: float = Field(1.0, gt=0, le=1000)
    max_in_flight: int | None = Field(None, ge=1, le=100_000)

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        return _normalize_url(value) if isinstance(value, str) else value

    def __repr_args__(self) -> Any:  # the URL may hold user:password@
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "url" and isinstance(value, str) else value


class VLLMSettings(BaseSettings):
    """Every setting of the vLLM provider. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        hide_input_in_errors=True,
    )

    base_url: str = Field(
        "http://localhost:8000/v1", description="OpenAI-compatible base URL (alias api_base)"
    )
    endpoints: Annotated[list[EndpointSpec], NoDecode] = Field(
        default_factory=list, description="further servers (URLs or {url, weight, max_in_flight})"
    )
    routing: Literal["balanced", "ordered"] | None = Field(
        None, description="balanced (default with several endpoints) or ordered (fail-over only)"
    )
    max_in_flight: int | None = Field(
        None, ge=1, le=100_000, description="requests in flight per endpoint; none: no limit"
    )
    progress_timeout: float = Field(
        15.0, gt=0, description="seconds a busy server may make no progress before giving up"
    )
    usage_log: Path | None = Field(None, description="append one JSON line per response here")
    structured_output: Literal["auto", "json_schema", "json_object", "off"] = Field(
        "auto", description="constrain saidata replies on the server: auto, json_schema, ..."
    )
    response_schema: Path | None = Field(
        None, description="JSON schema file for saidata replies; none: saigen's own"
    )
    model: str | None = Field(None, description="served model name; none: the one served")
    api_key: SecretStr | None = Field(None, description="API key (also VLLM_API_KEY)")
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    max_tokens: int = Field(4096, ge=1, le=1_048_576)
    timeout: float = Field(600.0, gt=0, description="seconds one generation may take")
    connect_timeout: float = Field(3.0, gt=0, description="seconds to establish a connection")
    headers_timeout: float = Field(
        10.0, gt=0, description="seconds until the server starts answering a generation"
    )
    stall_timeout: float = Field(90.0, gt=0, description="seconds a stream may send nothing")
    max_retries: int = Field(1, ge=0, le=10, description="retries of a transient failure")
    retry_max_delay: float = Field(30.0, ge=0, description="total seconds retries may wait")
    circuit_failure_threshold: int = Field(3, ge=1, le=1000)
    circuit_cooldown: float = Field(30.0, gt=0)
    hooks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    extra_body: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description="extra request fields for vLLM, e.g. {top_k: 20, repetition_penalty: 1.05}",
    )
    verify: bool | str = Field(True, description="TLS verification, or a CA bundle path")
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    gpu_memory_utilization: float = Field(0.8, gt=0.0, lt=1.0)

    @field_validator("extra_body", mode="before")
    @classmethod
    def _check_extra_body(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: JSON, or YAML's {top_k: 20}
            import yaml

            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem", None) or "not JSON or YAML"
                raise ValueError(f"cannot be read as a mapping ({mark})") from None
        if not isinstance(value, dict):
            return value  # pydantic says it is not a mapping
        for key in value:
            why = RESERVED_BODY.get(str(key))
            if why is not None and not (key == "n" and value[key] == 1):
                raise ValueError(f"`{key}` is the client's to set: {why}")
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: Any) -> Any:
        return _normalize_url(value) if isinstance(value, str) else value

    @field_validator("endpoints", "hooks", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("endpoints", mode="before")
    @classmethod
    def _endpoint_specs(cls, value: Any) -> Any:
        value = cls._split_list(value)  # runs before _split_list: pydantic runs these last-first
        if isinstance(value, list):
            return [{"url": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator(
        "model",
        "api_key",
        "routing",
        "max_in_flight",
        "usage_log",
        "response_schema",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
        return value

    @field_validator("usage_log")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("structured_output", mode="before")
    @classmethod
    def _structured_output_word(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower() or None
        if value is None:  # unset, blank, or the host's None for a key it does not know
            return "auto"
        if value is False:  # YAML reads an unquoted `off` or `no` as false
            return "off"
        return value

    @field_validator("response_schema")
    @classmethod
    def _readable_schema(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        from ._structured import load_schema_file

        path = value.expanduser()
        load_schema_file(path)  # ValueError says what is wrong with it
        return path

    @field_validator("verify", mode="before")
    @classmethod
    def _check_verify(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            if not Path(value).expanduser().is_file():
                raise ValueError("is neither true/false nor an existing CA bundle file")
            return str(Path(value).expanduser())
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> VLLMSettings:
        if self.api_key is None and os.environ.get("VLLM_API_KEY"):
            self.api_key = SecretStr(os.environ["VLLM_API_KEY"])
        if self.connect_timeout > self.timeout:
            raise ValueError("connect_timeout must not exceed timeout")
        return self

    @property
    def endpoint_urls(self) -> list[str]:
        """``base_url`` then ``endpoints``, without duplicates: the order they are tried in."""
        return [spec.url for spec in self.endpoint_specs]

    @property
    def endpoint_specs(self) -> list[EndpointSpec]:
        """Every server, ``base_url`` first, duplicates dropped; ``max_in_flight`` inherited."""
        specs: dict[str, EndpointSpec] = {}
        for spec in [EndpointSpec.model_validate({"url": self.base_url}), *self.endpoints]:
            if spec.url not in specs:
                limit = spec.max_in_flight or self.max_in_flight
                specs[spec.url] = spec.model_copy(update={"max_in_flight": limit})
        return list(specs.values())

    @property
    def routing_mode(self) -> str:
        """``routing`` as set, else balanced with several endpoints and ordered with one."""
        if self.routing is not None:
            return self.routing
        return "balanced" if len(self.endpoint_specs) > 1 else "ordered"

    def exposure(self) -> list[str]:
        """What this configuration exposes, one sentence each (empty when nothing): TLS not
        verified, a key sent in clear to another machine."""
        found = []
        if self.verify is False:
            found.append(
                "`verify: false`: TLS certificates are not checked, so anyone on the path can "
                "pose as the server and read the key and prompts; give a CA bundle path instead"
            )
        if self.api_key is not None:
            for url in self.endpoint_urls:
                parts = urlsplit(url)
                if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
                    found.append(
                        f"the API key goes in clear (plain http) to {redact_url(url)}: anyone on "
                        "that network can read it; use https (a TLS proxy in front of vLLM) or "
                        "keep the network trusted"
                    )
        return found

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def __repr_args__(self) -> Any:  # URLs may hold user:password@; the key is a SecretStr
        for name, value in super().__repr_args__():
            yield (
                name,
                redact_url(value) if name == "base_url" and isinstance(value, str) else value,
            )


def _describe_source(key: str, config: Mapping[str, Any]) -> str:
    if key in config:
        return "in the provider config"
    env = ENV_PREFIX + key.upper()
    if env in os.environ or any(name.upper() == env for name in os.environ):
        return f"from environment variable {env}"
    return "by default"


def _format_errors(exc: ValidationError, config: Mapping[str, Any]) -> InvalidConfiguration:
    lines: list[tuple[str, str]] = []
    fields: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        key = loc[0] if loc else ""
        if not key:  # model-level check: the message names the fields itself
            key = "connect_timeout" if "connect_timeout" in error["msg"] else "config"
        fields.append(key)
        message = error["msg"].removeprefix("Value error, ")
        if key in SECRET_FIELDS:
            shown = "(hidden)"
        else:
            raw = config.get(key, os.environ.get(ENV_PREFIX + key.upper()))
            shown = redact_urls(repr(raw)) if raw is not None else "(unset)"
            if len(shown) > 80:
                shown = shown[:77] + "..."
        fix = FIXES.get(key, "see docs/configuration.md")
        what = (
            f"vllm provider: invalid `{key}` = {shown} {_describe_source(key, config)}: "
            f"{redact_urls(message)}."
        )
        lines.append((what, fix))
    first = fields[0] if fields else None
    if len(lines) == 1:
        what, fix = lines[0]
        return InvalidConfiguration(what, field=first, fix=fix + ".")
    combined = InvalidConfiguration("\n".join(f"{w} Fix: {f}." for w, f in lines), field=first)
    combined.fix = lines[0][1] + "."
    return combined


LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """A name or address of this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(config: Mapping[str, Any] | None = None) -> VLLMSettings:
    """Validate a provider config dict (plus environment and defaults) into settings."""
    # None means unset: the host's config model dumps every field it has, unset ones as None
    raw: dict[str, Any] = {k: v for k, v in (config or {}).items() if v is not None}
    if not all(isinstance(key, str) for key in raw):
        raise InvalidConfiguration(
            "vllm provider: config keys must be strings.",
            fix="write `key: value` pairs.",
            field=None,
        )
    for alias, name in ALIASES.items():
        if alias in raw:
            value = raw.pop(alias)
            if name in raw and raw[name] != value:
                raise InvalidConfiguration(
                    f"vllm provider: both `{name}` and its alias `{alias}` are set, to different "
                    "values.",
                    field=name,
                    fix=f"keep only `{name}`",
                )
            raw.setdefault(name, value)
    for key in HOST_KEYS:
        raw.pop(key, None)
    known = set(VLLMSettings.model_fields)
    unknown = sorted(set(raw) - known)
    for key in unknown:
        logger.warning(
            "vllm provider: unknown config key `%s` is ignored (known keys: %s)",
            key,
            ", ".join(sorted(known | set(ALIASES))),
        )
        raw.pop(key)
    from pydantic_settings import SettingsError

    try:
        return VLLMSettings(**raw)
    except ValidationError as exc:
        raise _format_errors(exc, raw) from None
    except SettingsError as exc:  # an environment value the settings source cannot decode
        found = re.search(r'field "(\w+)"', str(exc))
        key = found.group(1) if found else "config"
        raise InvalidConfiguration(
            f"vllm provider: invalid `{key}` {_describe_source(key, raw)}: it cannot be read "
            "as a value of the right type.",
            field=key,
            fix=FIXES.get(key, "see docs/configuration.md") + ".",
        ) from None
