"""Stand-in for saigen.models.generation: GenerationContext, and the provider-name enum the
host's command line converts ``--llm-provider`` through."""

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LLMProvider(str, Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OLLAMA = "ollama"
    VLLM = "vllm"


class GenerationContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    software_name: str
    repository_data: list[Any] = Field(default_factory=list)
    similar_saidata: list[Any] = Field(default_factory=list)
    sample_saidata: list[Any] = Field(default_factory=list)
    user_hints: dict[str, Any] | None = None
    target_providers: list[str] = Field(default_factory=list)
    existing_saidata: Any | None = None
