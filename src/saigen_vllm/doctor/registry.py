"""Checks register here with a stable id, a title and whether they are slow (slow ones run last).
A check returns one result, or one per target; an exception becomes a ``crashed`` result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .context import DoctorContext
from .model import CheckResult

CheckFunction = Callable[[DoctorContext], Awaitable["CheckResult | list[CheckResult]"]]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: CheckFunction
    slow: bool = False
    needs_probe: bool = False
    requires: tuple[str, ...] = ()
    """checks whose findings this one reads; run first (silently) when not selected"""


CHECKS: list[Check] = []


def check(
    id: str,
    title: str,
    *,
    slow: bool = False,
    needs_probe: bool = False,
    requires: tuple[str, ...] = (),
) -> Callable[[CheckFunction], CheckFunction]:
    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(id, title, function, slow, needs_probe, requires))
        return function

    return register


def all_checks() -> list[Check]:
    # registration order is run order: environment, then servers, then this machine
    from . import (
        checks_environment,  # noqa: F401
        checks_hardware,  # noqa: F401
        checks_server,  # noqa: F401
    )

    return sorted(CHECKS, key=lambda c: c.slow)  # stable: registration order, slow ones last


def select(ids: list[str]) -> list[Check]:
    """Checks whose id equals, or starts with ``<id>.``, one of ``ids`` (all when empty)."""
    checks = all_checks()
    if not ids:
        return checks
    chosen = [c for c in checks if any(c.id == i or c.id.startswith(i + ".") for i in ids)]
    unknown = [i for i in ids if not any(c.id == i or c.id.startswith(i + ".") for c in checks)]
    if unknown:
        known = ", ".join(c.id for c in checks)
        raise KeyError(f"unknown check id(s): {', '.join(unknown)}; known: {known}")
    return chosen


def with_prerequisites(chosen: list[Check]) -> list[tuple[Check, bool]]:
    """The checks to run in order, each with whether it is reported (False: a prerequisite)."""
    by_id = {c.id: c for c in all_checks()}
    wanted = {c.id for c in chosen}
    needed: set[str] = set()

    def visit(check_id: str) -> None:
        for dep in by_id[check_id].requires:
            if dep not in needed:
                needed.add(dep)
                visit(dep)

    for c in chosen:
        visit(c.id)
    return [(c, c.id in wanted) for c in all_checks() if c.id in wanted | needed]
