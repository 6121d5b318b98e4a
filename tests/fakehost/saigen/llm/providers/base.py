"""Stand-in for saigen.llm.providers.base (interface per host-contract.md)."""

from abc import ABC, abstractmethod
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


class BaseLLMProvider(ABC):
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self._validate_config()

    @abstractmethod
    def _validate_config(self) -> None: ...

    @abstractmethod
    async def generate_saidata(self, context): ...

    @abstractmethod
    def is_available(self) -> bool: ...

    @abstractmethod
    def get_model_info(self) -> ModelInfo: ...

    @abstractmethod
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
    pass


class ConfigurationError(LLMProviderError):
    pass


class ConnectionError(LLMProviderError):
    pass


class GenerationError(LLMProviderError):
    pass


class RateLimitError(LLMProviderError):
    pass


class AuthenticationError(LLMProviderError):
    pass
