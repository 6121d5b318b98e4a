"""Nothing secret is ever shown: a password planted in a URL and an API key planted in the
config (and echoed back by a misbehaving server) are searched for in every output path: reprs,
configuration errors, generation errors, hook events, log records (ours, httpx's, openai's),
and the doctor's text and JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from saigen_vllm._host import GenerationContext
from saigen_vllm._redact import redact_url, server_text, split_credentials
from saigen_vllm.errors import InvalidConfiguration
from saigen_vllm.provider import VLLMProvider
from tests.support.fault_server import FaultServer, JSONReply, closed_port

PASSWORD = "pw-PLANTED-5150"
KEY = "sk-PLANTED-KEY-8086"
ESC = "\x1b"


def with_password(url: str) -> str:
    return url.replace("http://", f"http://admin:{PASSWORD}@", 1)


def assert_clean(text: str, where: str) -> None:
    assert PASSWORD not in text, f"password in {where}: {text[:400]}"
    assert KEY not in text, f"key in {where}: {text[:400]}"
    assert ESC not in text, f"terminal escape in {where}: {text[:400]!r}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:pw@gb10:8000/v1", "http://***@gb10:8000/v1"),
        ("http://gb10:8000/v1?token=abc", "http://gb10:8000/v1?token=***"),
        ("http://u:p@[::1]:8000/v1", "http://***@[::1]:8000/v1"),
        ("http://gb10:8000/v1", "http://gb10:8000/v1"),
        ("http://u:p@gb10:99999/v1", "http://***@gb10:99999/v1"),  # not parseable: still redacted
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_credentials_leave_the_url_for_a_header() -> None:
    bare, header = split_credentials("http://ad%40min:p%3Aw@gb10:8000/v1")
    assert bare == "http://gb10:8000/v1"
    import base64

    assert header == "Basic " + base64.b64encode(b"ad@min:p:w").decode()
    assert split_credentials("http://gb10:8000/v1") == ("http://gb10:8000/v1", None)


def test_server_text_is_made_safe() -> None:
    raw = (
        f"bad: Authorization: Bearer {KEY}\n{ESC}[31mred{ESC}[0m http://u:{PASSWORD}@h/ "
        + "x" * 900
    )
    shown = server_text(raw, KEY)
    assert_clean(shown, "server_text")
    assert "red" in shown and len(shown) <= 500 and "\n" not in shown


def test_reprs_and_configuration_errors(fault_server: FaultServer) -> None:
    url = with_password(fault_server.base_url)
    provider = VLLMProvider({"base_url": url, "api_key": KEY, "endpoints": [url + "2"]})
    for thing in (provider, provider.client, provider.client.transport, provider.settings):
        assert_clean(repr(thing), type(thing).__name__)
    assert_clean(str(provider.get_model_info()), "model info")
    for bad in (
        {"base_url": url, "endpoints": [with_password("http://h:1/v1"), 5]},
        {"base_url": with_password("http://h:99999/v1")},
        {"base_url": url, "api_key": KEY, "temperature": "hot"},
    ):
        with pytest.raises(InvalidConfiguration) as caught:
            VLLMProvider(bad)
        assert_clean(str(caught.value) + repr(caught.value), f"config error for {bad}")


def test_generation_errors_hooks_and_logs(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore, openai
    echo = {
        "error": {
            "message": f"invalid header Authorization: Bearer {KEY} {ESC}[2J{ESC}]0;pwned{ESC}\\",
            "type": "BadRequestError",
            "code": 400,
        }
    }
    fault_server.script_chat(JSONReply(echo, 400))
    url = with_password(fault_server.base_url)
    events: list[Any] = []
    provider = VLLMProvider(
        {"base_url": url, "api_key": KEY, "max_retries": 0, "structured_output": "off"}
    )
    provider.hooks.register_all(events.append)
    with pytest.raises(Exception) as caught:
        asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
    error = caught.value
    assert "invalid header" in str(error)  # the server's words are kept, made safe
    chain = [error, error.__cause__, error.__context__]
    assert_clean(" | ".join(f"{e!s} {e!r}" for e in chain if e is not None), "error chain")
    assert events and {e.name for e in events} >= {"on_endpoint_failed", "on_giveup"}
    assert_clean(" | ".join(repr(e) for e in events), "hook events")
    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    assert "HTTP Request" in logged or "Request" in logged  # the libraries' records were seen
    assert_clean(logged, "log records")
    # the server got the key as a bearer token, and the URL's password as HTTP Basic
    sent = fault_server.requests("/v1/models")[0]
    assert sent.headers.get("authorization", "").startswith("Basic ")


def test_unreachable_server_error_and_is_available(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_password(f"http://127.0.0.1:{closed_port()}/v1")
    provider = VLLMProvider({"base_url": url, "api_key": KEY, "max_retries": 0})
    assert provider.is_available() is True  # configured; reachability is validate_connection's
    assert asyncio.run(provider.validate_connection()) is False
    with pytest.raises(Exception) as caught:
        asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
    assert "Cannot connect" in str(caught.value)
    assert_clean(str(caught.value) + repr(caught.value), "connection error")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "connection check failed" in logged
    assert_clean(logged, "log records")


def doctor(*args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    out = subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "doctor", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
    )
    return out.stdout + out.stderr


def test_the_doctor_never_shows_them(fault_server: FaultServer, tmp_path: Path) -> None:
    url = with_password(fault_server.base_url)
    env = {"SAIGEN_VLLM_API_KEY": KEY}
    for args in (("-v", "--base-url", url), ("--json", "-v", "--base-url", url)):
        assert_clean(doctor(*args, env=env), f"doctor {args[0]}")
    config = tmp_path / "saigen.yaml"
    config.write_text(
        json.dumps({"llm_providers": {"vllm": {"base_url": url, "api_key": KEY,
                                                "endpoints": [url + "x"]}}})
    )  # fmt: skip
    for args in (("-v", "--config", str(config)), ("--json", "--config", str(config))):
        assert_clean(doctor(*args), f"doctor {args}")


def test_a_proxy_never_sees_requests_for_this_machine(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured for other hosts, never for loopback: the key stays here."""
    with FaultServer() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base_url.removesuffix("/v1"))
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        provider = VLLMProvider(
            {"base_url": fault_server.base_url, "api_key": KEY, "structured_output": "off"}
        )
        asyncio.run(provider.generate_saidata(GenerationContext(software_name="nginx")))
        assert fault_server.count("/v1/chat/completions") == 1
        assert proxy.received == []
