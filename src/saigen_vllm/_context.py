"""A stand-in for the host's ``GenerationContext``, for use without the host.

Kept apart from :mod:`saigen_vllm._standalone` so that building this pydantic model is paid only
by code that creates contexts, not by loading the provider.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GenerationContext(BaseModel):
    """The fields of the host's ``GenerationContext`` that prompts read; extra fields are kept."""

    model_config = ConfigDict(extra="allow")

    software_name: str
    repository_data: list[Any] = Field(default_factory=list)
    similar_saidata: list[Any] = Field(default_factory=list)
    sample_saidata: list[Any] = Field(default_factory=list)
    user_hints: dict[str, Any] | None = None
    target_providers: list[str] = Field(default_factory=list)
    existing_saidata: Any | None = None
