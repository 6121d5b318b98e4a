"""The bridge to the host: saigen's own classes when it can be imported, ours otherwise.

This is the only module that knows whether ``saigen`` is installed. Everything else imports the
provider interface from here. Set ``SAIGEN_VLLM_STANDALONE=1`` to ignore an installed host.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

HOST_IMPORT_ERROR: str | None = None
"""Why the host's classes are not in use (``None`` when they are)."""

if TYPE_CHECKING:
    from ._context import GenerationContext
    from ._standalone import (
        AuthenticationError,
        BaseLLMProvider,
        ConfigurationError,
        ConnectionError,
        GenerationError,
        LLMProviderError,
        LLMResponse,
        ModelCapability,
        ModelInfo,
        RateLimitError,
    )

    HOST_PRESENT: bool
else:

    def _load_host() -> str | None:
        if os.environ.get("SAIGEN_VLLM_STANDALONE", "").strip().lower() in {"1", "true", "yes"}:
            return "SAIGEN_VLLM_STANDALONE is set"
        import importlib.util

        try:
            if importlib.util.find_spec("saigen") is None:
                return "saigen is not installed"
        except (ImportError, ValueError) as exc:
            return f"saigen could not be located: {exc}"
        return None

    HOST_IMPORT_ERROR = _load_host()
    if HOST_IMPORT_ERROR is None:
        try:
            from saigen.llm.providers.base import (
                AuthenticationError,
                BaseLLMProvider,
                ConfigurationError,
                ConnectionError,
                GenerationError,
                LLMProviderError,
                LLMResponse,
                ModelCapability,
                ModelInfo,
                RateLimitError,
            )
        except Exception as exc:  # a broken host (e.g. Python < 3.12 syntax) must not break us
            HOST_IMPORT_ERROR = (
                f"saigen is installed but failed to import: {type(exc).__name__}: {exc}"
            )
    HOST_PRESENT = HOST_IMPORT_ERROR is None
    if not HOST_PRESENT:
        from ._standalone import (
            AuthenticationError,
            BaseLLMProvider,
            ConfigurationError,
            ConnectionError,
            GenerationError,
            LLMProviderError,
            LLMResponse,
            ModelCapability,
            ModelInfo,
            RateLimitError,
        )

    def __getattr__(name: str) -> object:
        """``GenerationContext`` is resolved on first use: building it is not free."""
        if name == "GenerationContext":
            if HOST_PRESENT:
                from saigen.models.generation import GenerationContext as context
            else:
                from ._context import GenerationContext as context
            globals()["GenerationContext"] = context
            return context
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HOST_IMPORT_ERROR",
    "HOST_PRESENT",
    "AuthenticationError",
    "BaseLLMProvider",
    "ConfigurationError",
    "ConnectionError",
    "GenerationContext",
    "GenerationError",
    "LLMProviderError",
    "LLMResponse",
    "ModelCapability",
    "ModelInfo",
    "RateLimitError",
]
