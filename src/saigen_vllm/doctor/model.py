"""The doctor's types: a check's result, the whole report, and its JSON form (schema_version 1,
documented in docs/doctor.md and shipped as ``doctor/report.schema.json``)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


class Status(str, enum.Enum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"
    CRASHED = "crashed"

    @property
    def symbol(self) -> str:
        return {
            "ok": "✓",
            "info": "i",
            "warn": "!",
            "fail": "✗",
            "skipped": "-",
            "crashed": "‼",
        }[self.value]

    @property
    def is_problem(self) -> bool:
        return self in (Status.WARN, Status.FAIL, Status.CRASHED)


@dataclass
class CheckResult:
    id: str
    status: Status
    summary: str
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "summary": self.summary,
            "hint": self.hint,
            "details": self.details,
            "target": self.target,
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass
class Report:
    results: list[CheckResult]
    metadata: dict[str, Any]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status in (Status.FAIL, Status.CRASHED)]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.WARN]

    @property
    def health(self) -> str:
        if self.failed:
            return "critical"
        if self.warnings:
            return "warning"
        return "healthy"

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def as_dict(self) -> dict[str, Any]:
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return {
            "schema_version": SCHEMA_VERSION,
            "metadata": self.metadata,
            "health": self.health,
            "counts": counts,
            "checks": [result.as_dict() for result in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)
