"""Structured output: what a saidata request is constrained to, and its JSON reply back as YAML.

``structured_output`` (settings) decides, once per provider:

- ``auto`` (default): the saidata JSON schema when one is known, else no constraint;
- ``json_schema``: the schema when one is known, else plain JSON (``json_object``);
- ``json_object``: any JSON object;
- ``off``: nothing.

The schema comes from ``response_schema: PATH`` when set, else from the host
(``saigen.llm.prompts.load_saidata_schema()``, the file saigen's own validator reads).

How a constraint is sent depends on the server: vLLM 0.11 and later take
``structured_outputs: {json: SCHEMA, disable_any_whitespace: true}`` (no whitespace between tokens
for the model to run away in); older servers, and servers that do not say their version, get the
portable ``response_format``. A saidata constraint is *optional*: a server whose grammar backend
cannot compile it answers 400, and the request is sent again without it (see :mod:`._client`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("saigen_vllm")

STRUCTURED_OUTPUTS_SINCE = (0, 11)
"""The first vLLM with the ``structured_outputs`` request field (``disable_any_whitespace``)."""


@dataclass(frozen=True)
class Constraint:
    """What one request asks the server to constrain its output to."""

    kind: str
    """``json_schema`` or ``json_object``."""
    schema: Mapping[str, Any] | None = None
    name: str = "saidata"
    source: str = ""
    """Where the schema came from: ``host``, a file path, or ``""``."""
    optional: bool = True
    """May be dropped where the server cannot compile it (the prompt still asks for saidata)."""
    verbatim: Mapping[str, Any] | None = None
    """A caller's own ``response_format``, sent exactly as given."""
    schema_text: str = field(default="", compare=False)
    """``schema`` as compact JSON, made once: vLLM takes the schema as a string too, and a string
    costs the SDK nothing per request where a 37 kB nested dict is copied and encoded each time."""

    def __post_init__(self) -> None:
        if self.schema is not None and not self.schema_text:
            text = json.dumps(self.schema, separators=(",", ":"), ensure_ascii=False)
            object.__setattr__(self, "schema_text", text)

    def __repr__(self) -> str:  # the schema is 40 kB: never print it
        return f"Constraint(kind={self.kind!r}, source={self.source!r}, optional={self.optional})"

    @classmethod
    def from_response_format(cls, response_format: Mapping[str, Any]) -> Constraint | None:
        """A caller's ``response_format``: required, and sent as given."""
        kind = str(response_format.get("type", ""))
        if kind == "text":
            return None
        return cls(kind=kind, optional=False, verbatim=response_format, source="caller")

    @property
    def expects_json(self) -> bool:
        return self.kind in ("json_schema", "json_object")

    def request_fields(
        self, server_version: tuple[int, ...] | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """``(response_format, structured_outputs)`` for a server of this version."""
        if self.verbatim is not None:
            return dict(self.verbatim), None
        if server_version is not None and server_version >= STRUCTURED_OUTPUTS_SINCE:
            if self.kind == "json_schema":
                return None, {"json": self.schema_text, "disable_any_whitespace": True}
            return None, {"json_object": True, "disable_any_whitespace": True}
        if self.kind == "json_schema":
            schema = {"name": self.name, "schema": self.schema}
            return {"type": "json_schema", "json_schema": schema}, None
        return {"type": "json_object"}, None


def saidata_constraint(mode: str, response_schema: Path | None) -> Constraint | None:
    """The constraint for saidata requests under ``structured_output: mode``."""
    if mode == "off":
        return None
    if mode == "json_object":
        return Constraint("json_object")
    schema, source = None, ""
    if response_schema is not None:
        schema, source = load_schema_file(response_schema), str(response_schema)
    else:
        schema = host_schema()
        source = "host" if schema is not None else ""
    if schema is not None:
        return Constraint("json_schema", schema=schema, source=source)
    if mode == "json_schema":
        logger.warning(
            "structured_output is json_schema but no schema is known (saigen is not installed "
            "and `response_schema` is not set): asking for any JSON object instead"
        )
        return Constraint("json_object")
    return None


def load_schema_file(path: Path) -> dict[str, Any]:
    """A JSON schema file: a JSON object. ``ValueError`` says what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"holds a JSON {type(value).__name__}, not a schema object")
    return value


def host_schema() -> dict[str, Any] | None:
    """The host's saidata schema, or ``None`` without a host or when it has none."""
    from . import _host

    if not _host.HOST_PRESENT:
        return None
    from ._prompts import host_schema_text

    try:
        value = json.loads(host_schema_text())
    except ValueError:  # the host's fallback text: "Schema file not found - ..."
        return None
    return value if isinstance(value, dict) else None


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"0.11.2.dev3+g1"`` -> ``(0, 11, 2)``; ``None`` when it names no version."""
    match = _VERSION.match(text or "")
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def json_to_yaml(text: str) -> str:
    """A JSON reply as the block-style YAML saigen's prompts ask for, keys in the model's order."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(
        yaml.dump(
            json.loads(text),
            Dumper=dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=100,
        )
    )
