"""The usage ledger: what a provider instance has generated, per endpoint.

It listens to finished requests (one :class:`~saigen_vllm.hooks.UsageEvent` each, the same event
the ``on_usage`` hook receives); it never sits in a request's path. ``provider.usage`` is the
ledger of a live provider; ``saigen-vllm usage FILE`` rebuilds one from a ``usage_log`` file.

Savings are computed only against prices the user gives (USD per million tokens): no price
table is shipped, because cloud prices change and differ by contract.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .hooks import UsageEvent

TTFT_SAMPLES = 10_000
"""Time-to-first-token samples kept per endpoint for percentiles (the most recent)."""


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; ``None`` when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class EndpointUsage:
    requests_ok: int = 0
    requests_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    first_started: float | None = None
    last_finished: float | None = None
    ttft: deque[float] = field(default_factory=lambda: deque(maxlen=TTFT_SAMPLES))

    def add(self, event: UsageEvent) -> None:
        if event.ok:
            self.requests_ok += 1
        else:
            self.requests_failed += 1
        self.prompt_tokens += event.prompt_tokens or 0
        self.completion_tokens += event.completion_tokens or 0
        self.generation_seconds += event.latency
        if event.time_to_first_token is not None:
            self.ttft.append(event.time_to_first_token)
        started = event.finished_at - event.latency
        if self.first_started is None or started < self.first_started:
            self.first_started = started
        if self.last_finished is None or event.finished_at > self.last_finished:
            self.last_finished = event.finished_at

    def summary(self) -> dict[str, Any]:
        span = (
            self.last_finished - self.first_started
            if self.first_started is not None and self.last_finished is not None
            else 0.0
        )
        return {
            "requests_ok": self.requests_ok,
            "requests_failed": self.requests_failed,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "wall_seconds": round(span, 3),
            "completion_tokens_per_s": round(self.completion_tokens / span, 2) if span else None,
            "time_to_first_token_s": {
                name: (round(value, 4) if value is not None else None)
                for name, value in (
                    ("p50", percentile(self.ttft, 50)),
                    ("p90", percentile(self.ttft, 90)),
                    ("p99", percentile(self.ttft, 99)),
                )
            },
        }


class UsageLedger:
    """Totals and per-endpoint figures of every finished request."""

    def __init__(self) -> None:
        self.total = EndpointUsage()
        self.endpoints: dict[str, EndpointUsage] = {}

    def __repr__(self) -> str:
        t = self.total
        return (
            f"UsageLedger(ok={t.requests_ok}, failed={t.requests_failed}, "
            f"prompt_tokens={t.prompt_tokens}, completion_tokens={t.completion_tokens})"
        )

    def record(self, event: UsageEvent) -> None:
        self.total.add(event)
        self.endpoints.setdefault(event.endpoint, EndpointUsage()).add(event)

    def summary(
        self, *, input_price: float | None = None, output_price: float | None = None
    ) -> dict[str, Any]:
        """Everything as plain data; with prices (USD per million tokens), what the same tokens
        would have cost there."""
        report: dict[str, Any] = {
            **self.total.summary(),
            "endpoints": {url: usage.summary() for url, usage in self.endpoints.items()},
        }
        if input_price is not None or output_price is not None:
            report["estimated_saving_usd"] = round(
                self.estimated_saving(input_price or 0.0, output_price or 0.0), 4
            )
            report["prices_usd_per_mtok"] = {"input": input_price, "output": output_price}
        return report

    def estimated_saving(self, input_price: float, output_price: float) -> float:
        """USD the same tokens would cost at the given prices (per million tokens)."""
        return (
            self.total.prompt_tokens * input_price + self.total.completion_tokens * output_price
        ) / 1_000_000

    @classmethod
    def from_log(cls, path: Path) -> UsageLedger:
        """Rebuild a ledger from a ``usage_log`` file (one JSON event per line)."""
        ledger = cls()
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    data.pop("name", None)
                    ledger.record(UsageEvent(**data))
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{path}:{number}: not a usage event ({exc})") from None
        return ledger


def append_to_log(path: Path, event: UsageEvent) -> None:
    """One JSON line per response; a short write on a local file, done in the caller."""
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(asdict(event)) + "\n")
