"""Stand-in for saigen.models.generation.GenerationContext."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GenerationContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    software_name: str
    repository_data: list[Any] = Field(default_factory=list)
    similar_saidata: list[Any] = Field(default_factory=list)
    sample_saidata: list[Any] = Field(default_factory=list)
    user_hints: dict[str, Any] | None = None
    target_providers: list[str] = Field(default_factory=list)
    existing_saidata: Any | None = None
