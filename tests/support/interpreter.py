"""Run a snippet in a fresh interpreter (import state cannot leak between worlds) and get JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str, *, paths: list[Path] = (), env: dict[str, str] | None = None) -> Any:
    """Execute ``code`` (which must print one JSON document last) in a new interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    full_env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(ROOT)])
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=60,
    )
    if out.returncode != 0:
        raise AssertionError(f"fresh interpreter failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])
