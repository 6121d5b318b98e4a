"""Where a Hugging Face token is found, the way huggingface_hub (and so vLLM) looks: HF_TOKEN,
the deprecated HUGGING_FACE_HUB_TOKEN, then the file ``hf auth login`` writes (HF_TOKEN_PATH, else
$HF_HOME/token, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface).
Only ever says *where*; the token is never read into a message."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def token_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("HF_TOKEN_PATH"):
        return Path(env["HF_TOKEN_PATH"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "token"
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache / "huggingface" / "token"


def hf_token_source(environ: Mapping[str, str] | None = None) -> str | None:
    """The name of the variable or the path that holds a token, or None when there is none."""
    env = os.environ if environ is None else environ
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if env.get(name, "").strip():
            return name
    path = token_file(env)
    try:
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            return str(path)
    except OSError:
        return None
    return None
