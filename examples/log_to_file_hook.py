"""A fallback hook that appends one JSON line per event to a file.

Use it from a saigen config (the module must be importable, e.g. on PYTHONPATH)::

    hooks: ["log_to_file_hook:handlers"]

or run this file against a closed port to see the events it records::

    python examples/log_to_file_hook.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

LOG = Path(os.environ.get("SAIGEN_VLLM_HOOK_LOG", "saigen-vllm-events.jsonl"))


def handlers(event: Any) -> None:
    """Receives every event (a callable registered by dotted path gets all hooks)."""
    record = {"time": time.time(), "hook": event.name, **dataclasses.asdict(event)}
    with LOG.open("a") as out:
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    import asyncio
    import socket

    from saigen_vllm import VLLMProvider

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    provider = VLLMProvider(
        {"base_url": f"http://127.0.0.1:{closed}/v1", "circuit_failure_threshold": 1}
    )
    provider.hooks.register_all(handlers)
    try:
        asyncio.run(provider.complete([{"role": "user", "content": "hi"}]))
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
    print(LOG.read_text(), end="")
