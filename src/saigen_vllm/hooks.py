"""Fallback hooks: small typed events emitted while a request is retried, failed over or given up.

Register a handler in code::

    provider.hooks.register("on_fallback", lambda event: print(event))

or by dotted path in the provider config (``hooks: ["mypkg.hooks:handlers"]``). A dotted path may
name a callable (it receives every event) or an object/module whose ``on_<event>`` attributes are
handlers. Handlers may be plain or ``async`` functions. A handler that raises is logged and never
breaks a generation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("saigen_vllm.hooks")

HOOK_NAMES = (
    "on_retry",
    "on_endpoint_failed",
    "on_fallback",
    "on_circuit_open",
    "on_circuit_close",
    "on_giveup",
    "on_usage",
)


@dataclass(frozen=True)
class RetryEvent:
    """A transient failure on ``endpoint``; attempt ``attempt + 1`` follows after ``wait`` s."""

    endpoint: str
    attempt: int
    wait: float
    kind: str
    message: str
    name: str = "on_retry"


@dataclass(frozen=True)
class EndpointFailedEvent:
    """``endpoint`` could not serve the request."""

    endpoint: str
    kind: str
    message: str
    attempts: int
    name: str = "on_endpoint_failed"


@dataclass(frozen=True)
class FallbackEvent:
    """The request moves from ``from_endpoint`` to ``to_endpoint``."""

    from_endpoint: str
    to_endpoint: str
    reason: str
    name: str = "on_fallback"


@dataclass(frozen=True)
class CircuitEvent:
    """The circuit of ``endpoint`` opened (calls fail at once) or closed again."""

    endpoint: str
    state: str
    failures: int
    cooldown: float
    name: str = "on_circuit_open"


@dataclass(frozen=True)
class GiveUpEvent:
    """Every endpoint failed; the host's own fallback takes over."""

    endpoints: tuple[str, ...]
    kind: str
    message: str
    attempts: int
    name: str = "on_giveup"


@dataclass(frozen=True)
class UsageEvent:
    """A request finished: ``ok`` with its token counts, or failed (``kind`` says how).

    ``finished_at`` is a monotonic clock reading (seconds), comparable between events of one
    process only."""

    endpoint: str
    model: str | None
    ok: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    time_to_first_token: float | None
    latency: float
    finished_at: float
    kind: str | None = None
    name: str = "on_usage"


HookEvent = (
    RetryEvent | EndpointFailedEvent | FallbackEvent | CircuitEvent | GiveUpEvent | UsageEvent
)
Handler = Callable[[Any], Awaitable[None] | None]


class Hooks:
    """A registry of handlers by hook name."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {name: [] for name in HOOK_NAMES}

    def register(self, name: str, handler: Handler) -> Handler:
        if name not in self._handlers:
            raise ValueError(f"unknown hook {name!r}; known hooks: {', '.join(HOOK_NAMES)}")
        self._handlers[name].append(handler)
        return handler

    def register_all(self, handler: Handler) -> Handler:
        for name in HOOK_NAMES:
            self._handlers[name].append(handler)
        return handler

    def register_object(self, target: Any) -> None:
        """Register ``target``'s ``on_*`` attributes, or ``target`` itself for every hook."""
        found = False
        for name in HOOK_NAMES:
            handler = getattr(target, name, None)
            if callable(handler):
                self.register(name, handler)
                found = True
        if not found:
            if not callable(target):
                raise TypeError(f"{target!r} is neither callable nor has on_* hook attributes")
            self.register_all(target)

    def __len__(self) -> int:
        return sum(len(handlers) for handlers in self._handlers.values())

    def wants(self, name: str) -> bool:
        """Whether any handler listens to ``name`` (lets callers skip building an event)."""
        return bool(self._handlers.get(name))

    async def emit(self, event: HookEvent) -> None:
        for handler in list(self._handlers.get(event.name, ())):
            try:
                result = handler(event)
                if isinstance(result, Awaitable):
                    await result
            except Exception:
                logger.exception("hook %r for %s failed; continuing", handler, event.name)


def load_dotted(path: str) -> Any:
    """Import ``package.module:attr``, ``package.module.attr`` or the module ``package.module``
    itself (its ``on_<hook>`` functions are the handlers)."""
    import importlib

    path = path.strip()
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        try:  # the whole path may be a module (`mycompany.alerts`)
            return importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name != path or "." not in path:
                raise
        module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path like package.module:attr")
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split(".") if attr else []:
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportError(f"{module_name} has no attribute {attr!r} (from {path!r})") from None
    return target


def hooks_from_paths(paths: list[str]) -> Hooks:
    hooks = Hooks()
    for path in paths:
        hooks.register_object(load_dotted(path))
    return hooks
