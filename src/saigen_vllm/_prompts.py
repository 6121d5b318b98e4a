"""The prompt: the host's own templates when saigen is installed, a small built-in one otherwise.

Template choice follows the host's meaning of a context: ``retry`` when the host is asking again
with validation feedback, ``update`` when existing saidata is given, else ``generation``.
"""

from __future__ import annotations

import json
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
        from saigen.llm.prompts import PromptManager

        prompt = PromptManager().get_template(name).render(context)
    else:
        prompt = render_builtin(name, context)
    return name, [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]


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
