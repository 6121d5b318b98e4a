from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_server import FaultServer

ROOT = Path(__file__).resolve().parent.parent
FAKEHOST = Path(__file__).resolve().parent / "fakehost"
SHARED = ROOT.parent / "shared"
"""The reference folder beside the checkout (../shared): the saidata schema and samples."""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SAIGEN_VLLM_* or VLLM_API_KEY from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SAIGEN_VLLM_") and name not in (
            "SAIGEN_VLLM_TEST_SERVER",
            "SAIGEN_VLLM_TEST_SERVER_KEY",
            "SAIGEN_VLLM_TEST_CACHE",
            "SAIGEN_VLLM_TEST_PYTHON",
            "SAIGEN_VLLM_HOST_SOURCE",
            "SAIGEN_VLLM_HOST_PYTHON",
            "SAIGEN_VLLM_SERVER_ONCE",
        ):
            monkeypatch.delenv(name)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server
