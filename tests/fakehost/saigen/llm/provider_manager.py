"""Stand-in for saigen.llm.provider_manager, with the published semantics (host-contract.md):
config keys go through the ``LLMProvider`` enum to a fixed registry (so ``vllm_gb10`` is logged
as invalid and skipped, and ``vllm`` is the in-tree provider); the manager pops ``priority``,
``enabled``, ``max_retries`` and ``provider``; it retries ``ConnectionError`` and
``GenerationError`` per provider (``max_retries`` times, default 2) and then falls back to the
next provider by priority. Attempts are counted in ``ATTEMPTS`` for tests."""

import asyncio
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from ..models.generation import GenerationContext, LLMProvider
from .providers.base import (
    AuthenticationError,
    BaseLLMProvider,
    ConfigurationError,
    ConnectionError,
    GenerationError,
    LLMResponse,
    RateLimitError,
)
from .providers.vllm import VLLMProvider

logger = logging.getLogger(__name__)
RETRY_WAIT = 0.01  # the published host waits 1 s; the count is what tests look at
ATTEMPTS: list[str] = []


class ProviderPriority(str, Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass
class ProviderConfig:
    provider_class: type[BaseLLMProvider]
    config: dict[str, Any]
    priority: ProviderPriority = ProviderPriority.MEDIUM
    enabled: bool = True
    max_retries: int = 2


class LLMProviderManager:
    PROVIDER_REGISTRY: ClassVar[dict[LLMProvider, type[BaseLLMProvider]]] = {
        LLMProvider.VLLM: VLLMProvider
    }

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.providers: dict[str, ProviderConfig] = {}
        self.provider_instances: dict[str, BaseLLMProvider] = {}
        self._initialize_providers()

    def _initialize_providers(self) -> None:
        for name, given in self.config.items():
            try:
                provider_class = self.PROVIDER_REGISTRY.get(LLMProvider(name.lower()))
                if provider_class is None:
                    logger.warning(f"Provider '{name}' not available or not installed")
                    continue
                entry = given.model_dump() if hasattr(given, "model_dump") else dict(given)
                priority = ProviderPriority(entry.pop("priority", "medium"))
                enabled = entry.pop("enabled", True)
                max_retries = entry.pop("max_retries", 2)
                entry.pop("provider", None)
                self.providers[name] = ProviderConfig(
                    provider_class, entry, priority, enabled, max_retries
                )
            except (ValueError, KeyError) as e:
                logger.error(f"Invalid provider configuration for '{name}': {e}")

    def get_provider(self, name: str) -> BaseLLMProvider | None:
        if name not in self.provider_instances:
            chosen = self.providers.get(name)
            if not chosen or not chosen.enabled:
                return None
            try:
                self.provider_instances[name] = chosen.provider_class(chosen.config)
            except Exception as e:
                logger.error(f"Failed to create provider instance '{name}': {e}")
                return None
        return self.provider_instances.get(name)

    def select_best_provider(
        self, preferred: str | None = None, exclude: list[str] | None = None
    ) -> str | None:
        exclude = exclude or []
        if preferred and preferred not in exclude and preferred in self.providers:
            provider = self.get_provider(preferred)
            if provider and provider.is_available():
                return preferred
        order = {ProviderPriority.HIGH: 3, ProviderPriority.MEDIUM: 2, ProviderPriority.LOW: 1}
        ranked = [
            (name, chosen.priority)
            for name, chosen in self.providers.items()
            if name not in exclude and chosen.enabled and self.get_provider(name) is not None
        ]
        ranked.sort(key=lambda pair: order[pair[1]], reverse=True)
        return ranked[0][0] if ranked else None

    async def generate_with_fallback(
        self, context: GenerationContext, preferred_provider: str | None = None
    ) -> LLMResponse:
        tried: list[str] = []
        last: Exception | None = None
        while True:
            name = self.select_best_provider(preferred_provider if not tried else None, tried)
            if name is None:
                break
            tried.append(name)
            try:
                return await self._generate_with_retry(self.get_provider(name), context, name)
            except Exception as e:
                logger.warning(f"Provider {name} failed: {e}")
                last = e
        raise GenerationError(f"All providers failed. Attempted: {tried}. Last error: {last}")

    async def _generate_with_retry(
        self, provider: Any, context: GenerationContext, name: str
    ) -> LLMResponse:
        retries = self.providers[name].max_retries
        for retry in range(retries + 1):
            ATTEMPTS.append(name)
            try:
                return await provider.generate_saidata(context)
            except (RateLimitError, ConnectionError, GenerationError):
                if retry >= retries:
                    raise
                await asyncio.sleep(RETRY_WAIT)
            except (AuthenticationError, ConfigurationError):
                raise
        raise AssertionError("unreachable")
