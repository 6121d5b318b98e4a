"""The prompt: the host's own templates when saigen is installed, a small built-in one otherwise.

Template choice follows the host's meaning of a context: ``retry`` when the host is asking again
with validation feedback, ``update`` when existing saidata is given, else ``generation``.

saigen's ``PromptTemplate.render`` rebuilds every template variable once per *section*, and one of
them is the 40 kB saidata schema, read from disk and re-serialised each time: about 8 ms a prompt,
more than everything else the provider does per request. :func:`render_host` produces the same
bytes from the host's own sections, conditions and variables, but builds the variables once per
render and reads the schema once per process. It is used only when the template has exactly the
shape it knows (the host's own class and methods); anything else renders the host's way.
"""

from __future__ import annotations

import functools
import json
import string
import sys
from typing import Any

from . import _host

SYSTEM_PROMPT = "You are an expert at generating software metadata in YAML format."


def template_name(context: Any) -> str:
    hints = getattr(context, "user_hints", None) or {}
    if isinstance(hints, dict) and hints.get("validation_feedback"):
        return "retry"
    if getattr(context, "existing_saidata", None) is not None:
        return "update"
    return "generation"


def render_messages(context: Any) -> tuple[str, list[dict[str, str]]]:
    """Return the template name used and the chat messages for ``context``."""
    name = template_name(context)
    if _host.HOST_PRESENT:
        prompt = render_host(_host_templates().get_template(name), context)
    else:
        prompt = render_builtin(name, context)
    return name, [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]


@functools.lru_cache(maxsize=1)
def _host_templates() -> Any:
    from saigen.llm.prompts import PromptManager

    return PromptManager()


_compiled: dict[str, string.Template] = {}
_schema: list[str] = []


def _original_schema_loader(module: Any) -> Any:
    """The host's own ``load_saidata_schema``; a new one (a reloaded module, a test's stand-in)
    empties the cache."""
    original = module.load_saidata_schema
    if original is _cached_schema:  # another thread is inside render_host right now
        return module._saigen_vllm_original_schema
    if getattr(module, "_saigen_vllm_original_schema", None) is not original:
        module._saigen_vllm_original_schema = original
        _schema.clear()
    return original


def host_schema_text() -> str:
    """``saigen.llm.prompts.load_saidata_schema()``, read once per process (the text the host's
    prompts embed: its schema as JSON, or a sentence when it has none)."""
    import importlib

    _original_schema_loader(importlib.import_module("saigen.llm.prompts"))
    return _cached_schema()


def _cached_schema() -> str:
    if not _schema:
        module: Any = sys.modules["saigen.llm.prompts"]
        _schema.append(module._saigen_vllm_original_schema())
    return _schema[0]


def _knows_shape(template: Any) -> bool:
    module = sys.modules.get("saigen.llm.prompts")
    base = getattr(module, "PromptTemplate", None)
    if (
        base is None
        or not isinstance(template, base)
        or not callable(getattr(module, "load_saidata_schema", None))
    ):
        return False
    cls = type(template)
    return all(
        getattr(cls, method, None) is getattr(base, method, None)
        for method in ("render", "_render_section", "_should_include_section")
    ) and isinstance(getattr(template, "sections", None), list)


def render_host(template: Any, context: Any) -> str:
    """``template.render(context)``, byte for byte, at a fraction of the cost (module doc)."""
    if not _knows_shape(template):
        return str(template.render(context))
    module: Any = sys.modules["saigen.llm.prompts"]
    original = _original_schema_loader(module)
    module.load_saidata_schema = _cached_schema  # only while the variables are built
    try:
        variables = template._build_template_variables(context)
    finally:
        module.load_saidata_schema = original
    parts: list[str] = []
    for section in template.sections:
        if not template._should_include_section(section, context):
            continue
        compiled = _compiled.get(section.template)
        if compiled is None:
            compiled = _compiled[section.template] = string.Template(section.template)
        try:
            text = compiled.safe_substitute(variables)
        except Exception as exc:
            if section.required:
                raise ValueError(
                    f"Failed to render required section '{section.name}': {exc}"
                ) from exc
            text = ""
        if text.strip():
            parts.append(text)
    return "\n\n".join(parts)


def _dump(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_none=True)
    try:
        return json.dumps(value, indent=1, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def render_builtin(name: str, context: Any) -> str:
    """A compact saidata 0.3 prompt for use without the host."""
    software = getattr(context, "software_name", None) or "unknown"
    lines = [
        f"Write saidata 0.3 YAML for the software `{software}`.",
        "",
        "Rules:",
        '- Start with `version: "0.3"` and a `metadata` mapping (name, display_name, description,',
        "  version, category, license, urls.website, urls.source).",
        "- Add only sections you are sure of: packages (name, package_name), services (name,",
        "  service_name, type), files (name, path, type), directories, commands, ports (port,",
        "  protocol, service), and `providers` overrides per package manager.",
        "- Use real package names for each target provider; never invent URLs.",
        "- Reply with the YAML document only: no prose, no code fences.",
    ]
    targets = getattr(context, "target_providers", None) or []
    if targets:
        lines += ["", "Target providers: " + ", ".join(map(str, targets))]
    repository = getattr(context, "repository_data", None) or []
    if repository:
        lines += ["", "Repository data:", _dump(list(repository)[:20])]
    hints = getattr(context, "user_hints", None) or {}
    if name == "update":
        lines += ["", "Update this existing saidata, keeping what is right:"]
        lines.append(_dump(getattr(context, "existing_saidata", None)))
    if name == "retry":
        feedback = hints.get("validation_feedback", {})
        lines += ["", "The previous attempt failed validation. Fix these errors:", _dump(feedback)]
    other = {k: v for k, v in hints.items() if k != "validation_feedback"} if hints else {}
    if other:
        lines += ["", "Hints from the user:", _dump(other)]
    return "\n".join(lines)
