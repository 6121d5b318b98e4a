"""The errors this package raises.

Every one is a subclass of one of the host's exception types (see :mod:`saigen_vllm._host`), so
the host's retry and fallback logic sees exactly what it expects, while callers who want detail can
catch the narrower class. The host never retries ``ConfigurationError`` or
``AuthenticationError``: failures that would repeat identically on every attempt are raised as one
of those two.
"""

from __future__ import annotations

from ._host import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    GenerationError,
    LLMProviderError,
    RateLimitError,
)


class InvalidConfiguration(ConfigurationError):
    """A configuration value is invalid. ``field`` names the key, ``fix`` says what to do."""

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.fix = fix


class ModelNotServed(ConfigurationError):
    """The configured model is not among those the server serves."""

    def __init__(self, message: str, *, model: str | None, served: list[str]) -> None:
        super().__init__(message)
        self.model = model
        self.served = served


class ContextLengthExceeded(ConfigurationError):
    """Prompt plus requested output does not fit the model's context window."""

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        max_tokens: int | None = None,
        max_model_len: int | None = None,
    ) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.max_model_len = max_model_len


class BadRequest(ConfigurationError):
    """The server rejected the request as malformed (400/422); sending it again cannot help."""


class ConstraintRefused(BadRequest):
    """The server's grammar backend cannot compile the requested schema or format (400)."""


class Unauthorized(AuthenticationError):
    """The server wants an API key, or refused the one sent."""


class ServerUnreachable(ConnectionError):
    """No connection could be made, or the server stopped sending bytes."""


class CircuitOpen(ConnectionError):
    """Every endpoint is in cool-down after repeated failures; nothing was sent."""


class ServerError(GenerationError):
    """The server failed while handling the request (5xx, in-band stream error)."""


class TruncatedOutput(GenerationError):
    """Generation stopped at a length limit: the reply is incomplete and was not returned."""


class InvalidReply(GenerationError):
    """The reply was empty, malformed, or not valid for the requested format."""


class Overloaded(RateLimitError):
    """The server or a proxy in front of it answered 429."""


__all__ = [
    "AuthenticationError",
    "BadRequest",
    "CircuitOpen",
    "ConfigurationError",
    "ConnectionError",
    "ConstraintRefused",
    "ContextLengthExceeded",
    "GenerationError",
    "InvalidConfiguration",
    "InvalidReply",
    "LLMProviderError",
    "ModelNotServed",
    "Overloaded",
    "RateLimitError",
    "ServerError",
    "ServerUnreachable",
    "TruncatedOutput",
    "Unauthorized",
]
