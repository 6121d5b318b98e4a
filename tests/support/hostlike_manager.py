"""A host-shaped provider manager, following saigen's ProviderManager semantics (host-contract.md):
priorities, ``enabled``, per-provider ``max_retries`` (RateLimitError waits 2**n, ConnectionError and
GenerationError wait briefly, AuthenticationError and ConfigurationError are never retried), then
fallback to the next provider by priority. Plugin classes come from the host snippet in
docs/host-integration.md, executed as written.

    python -m tests.support.hostlike_manager CONFIG_JSON   # prints a JSON report
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "host-integration.md"
PRIORITY = {"high": 3, "medium": 2, "low": 1}


def host_snippet() -> dict[str, Any]:
    """Execute the ``# host-snippet`` block of docs/host-integration.md; return its namespace."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    code = next(block for block in blocks if block.startswith("# host-snippet"))
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


class HostLikeManager:
    def __init__(self, config: dict[str, dict[str, Any]], base: Any) -> None:
        self.base = base  # the module holding the host's exception types
        self.snippet = host_snippet()
        self.providers: dict[str, tuple[Any, str, int]] = {}
        self.skipped: list[str] = []
        for name, entry in config.items():
            entry = dict(entry)
            priority = entry.pop("priority", "medium")
            enabled = entry.pop("enabled", True)
            max_retries = entry.pop("max_retries", 2)
            cls = self.snippet["resolve_provider_class"](name, entry)
            if cls is None or not enabled:
                self.skipped.append(name)
                continue
            self.providers[name] = (cls(entry), priority, max_retries)
        self.attempts: list[tuple[str, str]] = []  # (provider name, exception type or "ok")

    def order(self, preferred: str | None) -> list[str]:
        names = sorted(self.providers, key=lambda n: PRIORITY[self.providers[n][1]], reverse=True)
        if preferred in names:
            names.remove(preferred)
            names.insert(0, preferred)
        return names

    async def generate_with_fallback(self, context: Any, preferred: str | None = None) -> Any:
        last: BaseException | None = None
        for name in self.order(preferred):
            try:
                return name, await self._generate_with_retry(name, context)
            except Exception as exc:
                last = exc
        assert last is not None
        raise last

    async def _generate_with_retry(self, name: str, context: Any) -> Any:
        provider, _, max_retries = self.providers[name]
        b = self.base
        for retry in range(max_retries + 1):
            try:
                response = await provider.generate_saidata(context)
                self.attempts.append((name, "ok"))
                return response
            except b.RateLimitError as exc:
                self.attempts.append((name, _qualname(exc)))
                if retry >= max_retries:
                    raise
                await asyncio.sleep(0.01 * 2**retry)
            except (b.ConnectionError, b.GenerationError) as exc:
                self.attempts.append((name, _qualname(exc)))
                if retry >= max_retries:
                    raise
                await asyncio.sleep(0.01)
            except Exception as exc:
                self.attempts.append((name, _qualname(exc)))
                raise
        raise AssertionError("unreachable")


def _qualname(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}"


def run(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from saigen_vllm import _host

    manager = HostLikeManager(config, _host)
    context = _host.GenerationContext(software_name="nginx")

    async def go() -> Any:
        return await manager.generate_with_fallback(context)

    served_by, response = asyncio.run(go())
    return {
        "host_present": _host.HOST_PRESENT,
        "served_by": served_by,
        "content": response.content,
        "response_type": f"{type(response).__module__}.{type(response).__name__}",
        "attempts": manager.attempts,
        "skipped": manager.skipped,
        "provider_bases": {
            name: [f"{c.__module__}.{c.__name__}" for c in type(p).__mro__]
            for name, (p, _, _) in manager.providers.items()
        },
        "connection_error_is_host_type": _host.ConnectionError.__module__,
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
