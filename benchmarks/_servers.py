"""Benchmark helpers: vLLM-shaped simulators in their own processes (so their work is not
measured as ours) and saigen's rendered prompt (the real saigen when importable, else the test
stand-in in tests/fakehost, which has the host's shape)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def simulators(count: int, *, slots: int, step: float, reply_tokens: int) -> Iterator[list[str]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.vllm_sim",
                "--slots",
                str(slots),
                "--step",
                str(step),
                "--reply-tokens",
                str(reply_tokens),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        urls = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line.startswith("serving "):
                raise RuntimeError(f"simulator did not start: {line!r}")
            urls.append(line.split(" ", 1)[1])
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def saigen_context_and_prompt() -> tuple[object, str, str]:
    """A generation context, saigen's rendered prompt for it, and where the templates came from."""
    try:
        import saigen.llm.prompts  # noqa: F401

        where = "real saigen"
    except ImportError:
        sys.path.insert(0, str(ROOT / "tests" / "fakehost"))
        where = "tests/fakehost stand-in (saigen is not installed)"
    from saigen.llm.prompts import PromptManager
    from saigen.models.generation import GenerationContext

    context = GenerationContext(software_name="nginx", target_providers=["apt", "brew"])
    prompt = PromptManager().get_template("generation").render(context)
    return context, prompt, where
