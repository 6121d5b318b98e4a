from __future__ import annotations

import logging
from pathlib import Path

import pytest

from saigen_vllm._host import ConfigurationError
from saigen_vllm.errors import InvalidConfiguration
from saigen_vllm.settings import load_settings

SECRET = "sk-very-secret-value-123"

BAD_CONFIGS = [
    ({"base_url": "localhost:8000"}, "base_url", "http://"),
    ({"base_url": "ftp://host/v1"}, "base_url", "http://"),
    ({"base_url": "http://host:notaport/v1"}, "base_url", "port"),
    ({"temperature": 3}, "temperature", "0 to 2"),
    ({"temperature": "hot"}, "temperature", "0 to 2"),
    ({"max_tokens": 0}, "max_tokens", "whole number"),
    ({"max_tokens": 1.5}, "max_tokens", "whole number"),
    ({"timeout": -1}, "timeout", "above 0"),
    ({"connect_timeout": 0}, "connect_timeout", "above 0"),
    ({"connect_timeout": 50, "timeout": 10}, "connect_timeout", "at most `timeout`"),
    ({"max_retries": 99}, "max_retries", "0 to 10"),
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization", "0.8"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size", "1 on one GB10"),
    ({"endpoints": ["http://ok:8000/v1", "nope"]}, "endpoints", "base URLs"),
    ({"verify": "/does/not/exist.pem"}, "verify", "CA bundle"),
    ({"stall_timeout": "soon"}, "stall_timeout", "above 0"),
    ({"api_base": "http://a/v1", "base_url": "http://b/v1"}, "base_url", "keep only"),
]


@pytest.mark.parametrize(("config", "field", "fix"), BAD_CONFIGS)
def test_bad_config_names_field_value_and_fix(config: dict, field: str, fix: str) -> None:
    with pytest.raises(InvalidConfiguration) as info:
        load_settings({**config, "api_key": SECRET})
    error = info.value
    assert isinstance(error, ConfigurationError)
    assert error.field == field
    text = str(error)
    assert f"`{field}`" in text
    assert fix in text
    assert SECRET not in text and SECRET not in repr(error)
    # no chained pydantic error (which would print the raw input) rides along
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_invalid_value_is_shown_for_plain_fields() -> None:
    with pytest.raises(InvalidConfiguration, match=r"`temperature` = 3 in the provider config"):
        load_settings({"temperature": 3})


def test_invalid_secret_is_never_shown() -> None:
    with pytest.raises(InvalidConfiguration) as info:
        load_settings({"api_key": ["not", "a", SECRET]})
    assert info.value.field == "api_key"
    assert SECRET not in str(info.value)
    assert "(hidden)" in str(info.value)


def test_env_source_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAIGEN_VLLM_TIMEOUT", "-5")
    with pytest.raises(InvalidConfiguration, match="environment variable SAIGEN_VLLM_TIMEOUT"):
        load_settings({})


def test_defaults_fit_a_local_gb10() -> None:
    settings = load_settings({})
    assert settings.base_url == "http://localhost:8000/v1"
    assert settings.model is None
    assert settings.gpu_memory_utilization <= 0.87
    assert settings.tensor_parallel_size == 1
    assert settings.connect_timeout < settings.stall_timeout < settings.timeout
    assert settings.verify is True


def test_precedence_host_dict_over_env_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAIGEN_VLLM_MODEL", "from-env")
    monkeypatch.setenv("SAIGEN_VLLM_MAX_TOKENS", "1234")
    settings = load_settings({"model": "from-config"})
    assert settings.model == "from-config"
    assert settings.max_tokens == 1234
    assert settings.temperature == 0.1


def test_api_base_alias_and_url_normalisation() -> None:
    assert load_settings({"api_base": "http://gb10:8000/v1/"}).base_url == "http://gb10:8000/v1"
    assert load_settings({"base_url": "http://gb10:8000"}).base_url == "http://gb10:8000/v1"


def test_endpoints_order_and_env_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAIGEN_VLLM_ENDPOINTS", "http://b:8000/v1, http://a:8000/v1")
    settings = load_settings({"base_url": "http://a:8000/v1"})
    assert settings.endpoint_urls == ["http://a:8000/v1", "http://b:8000/v1"]


def test_api_key_from_vllm_api_key_and_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", SECRET)
    settings = load_settings({})
    assert settings.api_key_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    monkeypatch.setenv("SAIGEN_VLLM_API_KEY", "other-key-456")
    assert load_settings({}).api_key_value() == "other-key-456"


def test_verify_accepts_bools_and_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_settings({"verify": "false"}).verify is False
    assert load_settings({"verify": str(bundle)}).verify == str(bundle)


def test_host_keys_ignored_unknown_keys_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="saigen_vllm"):
        settings = load_settings(
            {"priority": "high", "enabled": True, "provider": "vllm", "modle": "typo"}
        )
    assert settings.model is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "`modle`" in messages[0]


def test_blank_key_and_model_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAIGEN_VLLM_API_KEY", "")
    monkeypatch.setenv("SAIGEN_VLLM_MODEL", "  ")
    settings = load_settings({})
    assert settings.api_key is None and settings.model is None
    assert load_settings({"api_key": "  "}).api_key is None


def test_none_from_the_host_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """saigen's config model dumps every field it has, unset ones as None (LLMConfig's shape)."""
    monkeypatch.setenv("SAIGEN_VLLM_MODEL", "from-env")
    dumped = {
        "api_key": None,
        "api_base": None,
        "model": None,
        "max_tokens": None,
        "temperature": None,
        "timeout": 30,
        "base_url": "http://gb10.lan:8000/v1",
        "structured_output": None,
    }
    settings = load_settings(dumped)
    assert settings.base_url == "http://gb10.lan:8000/v1"
    assert settings.model == "from-env"  # None did not override the environment
    assert (settings.max_tokens, settings.temperature, settings.timeout) == (4096, 0.1, 30.0)
    assert settings.structured_output == "auto"


@pytest.mark.parametrize(
    ("config", "warned"),
    [
        ({"base_url": "http://gb10.lan:8000/v1", "api_key": "sk-1"}, ["in clear"]),
        ({"base_url": "https://gb10.lan/v1", "api_key": "sk-1"}, []),
        ({"base_url": "http://127.0.0.1:8000/v1", "api_key": "sk-1"}, []),
        ({"base_url": "http://localhost:8000/v1", "api_key": "sk-1"}, []),
        ({"base_url": "http://gb10.lan:8000/v1"}, []),  # no key, nothing to leak
        ({"base_url": "https://gb10.lan/v1", "verify": False}, ["verify: false"]),
    ],
)
def test_exposure_is_named(config: dict[str, object], warned: list[str]) -> None:
    from saigen_vllm.settings import load_settings

    found = load_settings(config).exposure()
    assert len(found) == len(warned)
    for text, words in zip(found, warned, strict=True):
        assert words in text and "sk-1" not in text


def test_the_provider_warns_once_per_exposure(caplog: pytest.LogCaptureFixture) -> None:
    from saigen_vllm.provider import VLLMProvider

    config = {"base_url": "http://gb10-warn.lan:8000/v1", "api_key": "sk-1"}
    with caplog.at_level(logging.WARNING, logger="saigen_vllm"):
        VLLMProvider(config)
        VLLMProvider(config)
    assert [r.getMessage() for r in caplog.records].count(
        next(r.getMessage() for r in caplog.records if "in clear" in r.getMessage())
    ) == 1


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("{top_k: 20}", {"top_k": 20}),  # the YAML form the docs' hint suggests
        ('{"top_k": 20, "n": 1}', {"top_k": 20, "n": 1}),
        ("", {}),
    ],
)
def test_extra_body_from_the_environment(
    env: str, value: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAIGEN_VLLM_EXTRA_BODY", env)
    assert load_settings({}).extra_body == value


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"max_tokens": 99999}, "provider's `max_tokens`"),
        ({"max_completion_tokens": 9}, "provider's `max_tokens`"),
        ({"model": "x"}, "provider's `model`"),
        ({"messages": []}, "the prompt is saigen's"),
        ({"stream": False}, "always streamed"),
        ({"response_format": {"type": "json_object"}}, "structured_output"),
        ({"temperature": 1}, "provider's `temperature`"),
        ({"n": 2}, "one reply per request"),
    ],
)
def test_keys_the_client_owns_are_refused(body: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidConfiguration) as caught:
        load_settings({"extra_body": body})
    assert caught.value.field == "extra_body" and says in str(caught.value)
    assert caught.value.fix and "without the fields the client sets" in caught.value.fix


@pytest.mark.parametrize("env", ["{top_k: 20", "[1, 2]", "just text"])
def test_bad_extra_body_in_the_environment_is_a_configuration_error(
    env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from saigen_vllm.provider import VLLMProvider

    monkeypatch.setenv("SAIGEN_VLLM_EXTRA_BODY", env)
    with pytest.raises(ConfigurationError) as caught:
        load_settings({})
    assert "SAIGEN_VLLM_EXTRA_BODY" in str(caught.value)
    provider = VLLMProvider.__new__(VLLMProvider)  # a host may ask before building succeeds
    provider.config = {}
    assert provider.is_available() is False  # never raises
