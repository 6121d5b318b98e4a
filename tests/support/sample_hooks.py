"""Hooks for tests: an object with on_* handlers, and a recorder of events."""

from __future__ import annotations

from typing import Any

EVENTS: list[Any] = []


class _Recorder:
    def on_retry(self, event: Any) -> None:
        EVENTS.append(event)

    async def on_giveup(self, event: Any) -> None:
        EVENTS.append(event)


recorder = _Recorder()
