"""Stand-in for saigen.models.generation.GenerationContext."""

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field


class GenerationContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    software_name: str
    repository_data: List[Any] = Field(default_factory=list)
    similar_saidata: List[Any] = Field(default_factory=list)
    sample_saidata: List[Any] = Field(default_factory=list)
    user_hints: Optional[Dict[str, Any]] = None
    target_providers: List[str] = Field(default_factory=list)
    existing_saidata: Optional[Any] = None
