"""Stand-ins for the host's provider interface, used when ``saigen`` cannot be imported.

They carry the same names, fields and meaning as ``saigen.llm.providers.base`` so that code written
against this package behaves the same with and without the host. Only :mod:`saigen_vllm._host`
decides which set is in use.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import Enum
from typing import Any


class ModelCapability(str, Enum):
    TEXT_GENERATION = "text_generation"
    CODE_GENERATION = "code_generation"
    STRUCTURED_OUTPUT = "structured_output"
    FUNCTION_CALLING = "function_calling"
    LARGE_CONTEXT = "large_context"


@dataclass
class ModelInfo:
    name: str
    provider: str
    max_tokens: int
    context_window: int
    capabilities: list[ModelCapability]
    cost_per_1k_tokens: float | None = None
    supports_streaming: bool = False


@dataclass
class LLMResponse:
    content: str
    tokens_used: int | None = None
    cost_estimate: float | None = None
    model_used: str | None = None
    finish_reason: str | None = None
    metadata: dict[str, Any] | None = None


class BaseLLMProvider(abc.ABC):
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self._validate_config()

    @abc.abstractmethod
    def _validate_config(self) -> None: ...

    @abc.abstractmethod
    async def generate_saidata(self, context: Any) -> LLMResponse: ...

    @abc.abstractmethod
    def is_available(self) -> bool: ...

    @abc.abstractmethod
    def get_model_info(self) -> ModelInfo: ...

    @abc.abstractmethod
    async def validate_connection(self) -> bool: ...

    def get_provider_name(self) -> str:
        return self.__class__.__name__.replace("Provider", "").lower()

    def estimate_cost(self, tokens: int) -> float | None:
        info = self.get_model_info()
        if info.cost_per_1k_tokens:
            return (tokens / 1000) * info.cost_per_1k_tokens
        return None

    def supports_capability(self, capability: ModelCapability) -> bool:
        return capability in self.get_model_info().capabilities


class LLMProviderError(Exception):
    """Base of every provider error."""


class ConfigurationError(LLMProviderError):
    """The configuration is wrong; retrying cannot help."""


class ConnectionError(LLMProviderError):
    """The server could not be reached or stopped answering."""


class GenerationError(LLMProviderError):
    """The server answered, but not with a usable generation."""


class RateLimitError(LLMProviderError):
    """The server (or a proxy in front of it) asked us to slow down."""


class AuthenticationError(LLMProviderError):
    """The API key is missing or was refused."""
