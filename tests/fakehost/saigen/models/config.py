"""Stand-in for saigen.models.config, in the published shape (host-contract.md): ``LLMConfig``
requires ``provider``, has an integer ``timeout`` defaulting to 30 and ``max_retries`` to 3, and
silently drops every key it does not know (``base_url``, ``endpoints``, ``hooks``, ...)."""

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class LLMConfig(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    provider: str
    api_key: SecretStr | None = None
    api_base: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    timeout: int | None = 30
    max_retries: int | None = 3
    enabled: bool = True


class SaigenConfig(BaseModel):
    llm_providers: dict[str, LLMConfig] = Field(default_factory=dict)
