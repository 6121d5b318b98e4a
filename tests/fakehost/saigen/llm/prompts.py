"""Stand-in for saigen.llm.prompts, in the host's shape (host-contract.md): templates made of
sections with conditions, rendered with string.Template; each section builds every template
variable again, including the saidata schema read from disk and re-serialised (the cost the
provider's renderer avoids). The wording is the stand-in's own; tests compare the provider's
render with this module's own ``render`` byte for byte."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from string import Template

SCHEMA_FILE = Path(
    os.environ.get("SAIGEN_FAKEHOST_SCHEMA")
    or Path(__file__).resolve().parents[5] / "shared" / "data" / "saidata-0.3-schema.json"
)
SCHEMA_READS = {"count": 0}


def load_saidata_schema() -> str:
    try:
        if SCHEMA_FILE.exists():
            SCHEMA_READS["count"] += 1
            with open(SCHEMA_FILE, encoding="utf-8") as f:
                return json.dumps(json.load(f), indent=2)
        return "Schema file not found - using basic requirements"
    except Exception:
        return "Schema loading failed - using basic requirements"


@dataclass
class PromptSection:
    name: str
    template: str
    required: bool = True
    condition: str | None = None


class PromptTemplate:
    def __init__(self, name: str, sections: list[PromptSection]):
        self.name = name
        self.sections = sections

    def render(self, context) -> str:
        rendered = []
        for section in self.sections:
            if self._should_include_section(section, context):
                text = self._render_section(section, context)
                if text.strip():
                    rendered.append(text)
        return "\n\n".join(rendered)

    def _should_include_section(self, section: PromptSection, context) -> bool:
        condition = section.condition
        if not condition:
            return True
        if condition == "has_repository_data":
            return bool(context.repository_data)
        if condition == "has_user_hints":
            return bool(context.user_hints)
        if condition == "has_existing_saidata":
            return bool(context.existing_saidata)
        if condition == "has_validation_feedback":
            return bool(context.user_hints and context.user_hints.get("validation_feedback"))
        return True

    def _render_section(self, section: PromptSection, context) -> str:
        variables = self._build_template_variables(context)
        try:
            if not hasattr(section, "_compiled_template"):
                section._compiled_template = Template(section.template)
            return section._compiled_template.safe_substitute(variables)
        except Exception as e:
            if section.required:
                raise ValueError(f"Failed to render required section '{section.name}': {e}") from e
            return ""

    def _build_template_variables(self, context) -> dict[str, str]:
        hints = context.user_hints or {}
        return {
            "software_name": context.software_name,
            "target_providers": ", ".join(context.target_providers) or "apt, brew, winget",
            "repository_context": json.dumps(list(context.repository_data), default=str),
            "user_hints": json.dumps({k: v for k, v in hints.items()}, default=str),
            "existing_saidata": json.dumps(context.existing_saidata, default=str),
            "validation_feedback": json.dumps(hints.get("validation_feedback"), default=str),
            "json_schema": "Saidata JSON schema:\n" + load_saidata_schema(),
        }


_RULES = "Reply with one YAML document for $software_name; targets: $target_providers. " * 40

SAIDATA_GENERATION_TEMPLATE = PromptTemplate(
    "generation",
    [
        PromptSection("task", "[host-template:generation] saidata for $software_name"),
        PromptSection(
            "repository", "Repository data: $repository_context", False, "has_repository_data"
        ),
        PromptSection("hints", "User hints: $user_hints", False, "has_user_hints"),
        PromptSection("rules", _RULES),
        PromptSection("cost", "Unused: $$literal dollars, $unknown placeholder kept"),
        PromptSection("empty", "   ", False),
    ],
)
UPDATE_SAIDATA_TEMPLATE = PromptTemplate(
    "update",
    [
        PromptSection("task", "[host-template:update] saidata for $software_name"),
        PromptSection("existing", "Existing: $existing_saidata", True, "has_existing_saidata"),
        PromptSection("rules", _RULES),
    ],
)
RETRY_SAIDATA_TEMPLATE = PromptTemplate(
    "retry",
    [
        PromptSection("task", "[host-template:retry] saidata for $software_name"),
        PromptSection("feedback", "Fix: $validation_feedback", True, "has_validation_feedback"),
        PromptSection("schema", "$json_schema", False, "include_json_schema"),
    ],
)


class PromptManager:
    def __init__(self):
        self.templates = {
            "generation": SAIDATA_GENERATION_TEMPLATE,
            "update": UPDATE_SAIDATA_TEMPLATE,
            "retry": RETRY_SAIDATA_TEMPLATE,
        }

    def get_template(self, name: str) -> PromptTemplate:
        if name not in self.templates:
            raise KeyError(f"Template '{name}' not found. Available: {list(self.templates)}")
        return self.templates[name]
