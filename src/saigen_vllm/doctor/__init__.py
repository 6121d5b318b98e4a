"""``saigen-vllm doctor``: checks of the whole chain, from this Python environment to the server.

report = asyncio.run(run_doctor(DoctorOptions(base_url="http://gb10:8000/v1")))
print(report.to_json())
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import Callable

from .._redact import redact_text
from .._version import __version__
from .context import DoctorCannotRun, DoctorContext, DoctorOptions, build_targets
from .model import SCHEMA_VERSION, CheckResult, Report, Status
from .registry import Check, all_checks, select, with_prerequisites

__all__ = [
    "SCHEMA_VERSION",
    "CheckResult",
    "DoctorCannotRun",
    "DoctorOptions",
    "Report",
    "Status",
    "all_checks",
    "run_doctor",
]

CHECK_TIMEOUT = 30.0
CRASH_HINT = (
    "this is a bug in saigen-vllm's doctor or an unexpected answer: rerun with -v and report it"
)


async def _run_one(check: Check, ctx: DoctorContext, probe: bool) -> list[CheckResult]:
    if check.needs_probe and not probe:
        return [CheckResult(check.id, Status.SKIPPED, "not run; add --probe to run it")]
    started = time.perf_counter()
    try:
        timeout = max(CHECK_TIMEOUT, ctx.options.probe_timeout) if check.slow else CHECK_TIMEOUT
        outcome = await asyncio.wait_for(check.run(ctx), timeout=timeout)
    except asyncio.TimeoutError:  # a finding about what it talks to, not a bug
        outcome = CheckResult(
            check.id,
            Status.FAIL,
            f"timed out after {timeout:g}s",
            "what it asks (a server, nvidia-smi) did not answer in time: check it is up and "
            "not overloaded; rerun with -v",
        )
    except Exception as exc:
        outcome = CheckResult(
            check.id, Status.CRASHED, f"the check crashed: {type(exc).__name__}: {exc}", CRASH_HINT
        )
    results = outcome if isinstance(outcome, list) else [outcome]
    elapsed = (time.perf_counter() - started) * 1000 / max(1, len(results))
    for result in results:
        result.duration_ms = elapsed
    return results


def _redact(result: CheckResult, secrets: list[str]) -> CheckResult:
    if not secrets:
        return result
    result.summary = redact_text(result.summary, *secrets)
    result.hint = redact_text(result.hint, *secrets) if result.hint else None
    result.details = json.loads(redact_text(json.dumps(result.details, default=str), *secrets))
    return result


async def run_doctor(
    options: DoctorOptions,
    check_ids: list[str] | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> Report:
    """Run the selected checks (all by default). Raises DoctorCannotRun or KeyError (unknown id)."""
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    chosen = select(check_ids or [])
    # a generating check runs with --probe, or when named by its whole id (not by a prefix such
    # as `server`, which means "the server checks", not "generate something")
    named = {c.id for c in chosen if c.id in (check_ids or [])}
    ctx = DoctorContext(options, targets=build_targets(options))
    results: list[CheckResult] = []
    try:
        for check, reported in with_prerequisites(chosen):
            if on_check is not None:
                on_check(check)
            found = await _run_one(check, ctx, options.probe or check.id in named)
            # a prerequisite is shown only when it found a problem the selected check hides
            results.extend(r for r in found if reported or r.status.is_problem)
    finally:
        for transport in ctx.transports.values():
            await transport.aclose()
    secrets = ctx.secrets()
    return Report(
        [_redact(result, secrets) for result in results],
        {
            "tool_version": __version__,
            "started_at": started_at.isoformat(),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "targets": [t.name for t in ctx.targets],
        },
    )


def list_checks() -> list[tuple[str, str, bool]]:
    return [(c.id, c.title, c.slow) for c in all_checks()]
