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


class Explained(Exception):
    """Says what happened (``what``) and what to do (``fix``), both as data: the doctor and
    callers read the attributes; ``str()`` is both, for a person."""

    def __init__(self, what: str, *, fix: str | None = None) -> None:
        super().__init__(f"{what} Fix: {fix}" if fix else what)
        self.what = what
        self.fix = fix


class InvalidConfiguration(Explained, ConfigurationError):
    """A configuration value is invalid. ``field`` names the key, ``fix`` says what to do."""

    def __init__(self, what: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(what, fix=fix)
        self.field = field


class ModelNotServed(Explained, ConfigurationError):
    """The configured model is not among those the server serves."""

    def __init__(
        self, what: str, *, model: str | None, served: list[str], fix: str | None = None
    ) -> None:
        super().__init__(what, fix=fix)
        self.model = model
        self.served = served


class ContextLengthExceeded(Explained, ConfigurationError):
    """Prompt plus requested output does not fit the model's context window."""

    def __init__(
        self,
        what: str,
        *,
        fix: str | None = None,
        prompt_tokens: int | None = None,
        max_tokens: int | None = None,
        max_model_len: int | None = None,
    ) -> None:
        super().__init__(what, fix=fix)
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.max_model_len = max_model_len


class BadRequest(Explained, ConfigurationError):
    """The server rejected the request as malformed (400/422); sending it again cannot help."""


class ConstraintRefused(BadRequest):
    """The server's grammar backend cannot compile the requested schema or format (400)."""


class Unauthorized(Explained, AuthenticationError):
    """The server wants an API key, or refused the one sent."""


class ServerUnreachable(Explained, ConnectionError):
    """No connection could be made, or the server stopped sending bytes."""


class CircuitOpen(Explained, ConnectionError):
    """Every endpoint is in cool-down after repeated failures; nothing was sent."""


class ProviderError(Explained, GenerationError):
    """A generation failed for a reason none of the narrower classes names."""


class ServerError(Explained, GenerationError):
    """The server failed while handling the request (5xx, in-band stream error)."""


class TruncatedOutput(Explained, GenerationError):
    """Generation stopped at a length limit: the reply is incomplete and was not returned."""


class InvalidReply(Explained, GenerationError):
    """The reply was empty, malformed, or not valid for the requested format."""


class Overloaded(Explained, RateLimitError):
    """The server or a proxy in front of it answered 429."""


__all__ = [
    "AuthenticationError",
    "BadRequest",
    "CircuitOpen",
    "ConfigurationError",
    "ConnectionError",
    "ConstraintRefused",
    "ContextLengthExceeded",
    "Explained",
    "GenerationError",
    "InvalidConfiguration",
    "InvalidReply",
    "LLMProviderError",
    "ModelNotServed",
    "Overloaded",
    "ProviderError",
    "RateLimitError",
    "ServerError",
    "ServerUnreachable",
    "TruncatedOutput",
    "Unauthorized",
]
