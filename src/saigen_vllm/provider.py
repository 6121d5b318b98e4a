"""``VLLMProvider``: the host's provider contract, and nothing else.

This module is the target of the ``saigen.providers`` entry point, so it stays cheap to import:
``openai``, ``httpx``, ``tenacity`` and the catalog load on first real use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._host import (
    BaseLLMProvider,
    LLMResponse,
    ModelCapability,
    ModelInfo,
)
from ._redact import redact_url
from .errors import InvalidConfiguration
from .settings import VLLMSettings, load_settings

if TYPE_CHECKING:
    from ._client import GenerationResult, ResilientClient
    from ._structured import Constraint
    from ._usage import UsageLedger
    from .hooks import Hooks

logger = logging.getLogger("saigen_vllm")
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Once per process: a batch builds providers again and again."""
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning("vllm provider: %s", message)


DEFAULT_CONTEXT_WINDOW = 8192
"""Used by get_model_info() until the server or the catalog says otherwise."""
LARGE_CONTEXT_TOKENS = 32768


class VLLMProvider(BaseLLMProvider):
    """saigen provider for a vLLM server (or several) speaking the OpenAI API."""

    settings: VLLMSettings
    handles_retries = True
    """The host should call it once per generation: it retries what is transient itself (its
    ``max_retries``), and a host retrying on top multiplies attempts (docs/host-integration.md)."""

    def __init__(
        self, config: dict[str, Any] | None = None, *, clock: Callable[[], float] | None = None
    ) -> None:
        """``config``: the host's entry for this provider. ``clock``: monotonic seconds for the
        circuit breakers and liveness watchers (tests move it on instead of sleeping)."""
        super().__init__(dict(config or {}))
        self._clock = clock or time.monotonic
        self._hooks: Hooks | None = None
        self._client: ResilientClient | None = None
        self._last_model: str | None = None
        self._saidata_constraint: tuple[Constraint | None] | None = None
        for exposed in self.settings.exposure():
            _warn_once(exposed)
        if self.settings.hooks:
            _ = self.hooks  # import configured hooks now: a bad path is a configuration error

    def __repr__(self) -> str:
        urls = [redact_url(url) for url in self.settings.endpoint_urls]
        return f"VLLMProvider(endpoints={urls!r}, model={self.settings.model!r})"

    # -- the host contract ---------------------------------------------------------------------

    def _validate_config(self) -> None:
        self.settings = load_settings(self.config)

    def is_available(self) -> bool:
        """True when the configuration is valid. No network: see validate_connection()."""
        try:
            load_settings(self.config)
        except Exception as exc:  # never raises: a host asks this before anything else
            logger.debug("vllm provider not available: %s", exc)
            return False
        return True

    async def validate_connection(self) -> bool:
        """A short round trip: some endpoint lists the configured (or a single) model."""
        from ._client import pick_model

        client = self.client
        for endpoint in self.settings.endpoint_urls:
            try:
                served = await client.served_models(endpoint, refresh=True)
                self._last_model = pick_model(self.settings.model, served, endpoint).id
                return True
            except Exception as exc:
                logger.warning("vLLM connection check failed for %s: %s", redact_url(endpoint), exc)
        return False

    def get_model_info(self) -> ModelInfo:
        name = self.settings.model or self._last_model or "(served model)"
        context = None
        if self._client is not None:
            context = self._client.known_max_model_len()
        if context is None:
            context = self._catalog_context(name)
        capabilities = [
            ModelCapability.TEXT_GENERATION,
            ModelCapability.CODE_GENERATION,
            ModelCapability.STRUCTURED_OUTPUT,
        ]
        context = context or DEFAULT_CONTEXT_WINDOW
        if context >= LARGE_CONTEXT_TOKENS:
            capabilities.append(ModelCapability.LARGE_CONTEXT)
        return ModelInfo(
            name=name,
            provider="vllm",
            max_tokens=min(self.settings.max_tokens, context),
            context_window=context,
            capabilities=capabilities,
            cost_per_1k_tokens=0.0,
            supports_streaming=True,
        )

    def estimate_cost(self, tokens: int) -> float:
        return 0.0

    async def generate_saidata(self, context: Any) -> LLMResponse:
        """Render the prompt for ``context`` and return the model's whole reply as YAML.

        With ``structured_output`` on (see docs/configuration.md) the server is constrained to
        the saidata schema and its JSON reply is handed over as YAML, as saigen's prompts ask."""
        from ._prompts import render_messages

        template, messages = render_messages(context)
        started = time.perf_counter()
        result = await self.client.generate(messages, constraint=self.saidata_constraint)
        self._last_model = result.model
        content = None
        if result.constraint is not None and result.constraint.expects_json:
            from ._structured import json_to_yaml

            try:
                content = json_to_yaml(result.completion.content)
            except ValueError:  # the server ignored the constraint: its reply is as prompted
                logger.debug("constrained reply from %s is not JSON", result.completion.endpoint)
        response = self._response(result, time.perf_counter() - started, content)
        if response.metadata is not None:
            response.metadata["template"] = template
            if result.constraint is not None and content is None:
                response.metadata["structured_output"] = None
                response.metadata["structured_output_ignored"] = True
        return response

    # -- beyond the contract -------------------------------------------------------------------

    @property
    def hooks(self) -> Hooks:
        """The hook registry (``provider.hooks.register("on_fallback", fn)``)."""
        if self._hooks is None:
            from .hooks import hooks_from_paths

            try:
                self._hooks = hooks_from_paths(self.settings.hooks)
            except Exception as exc:
                raise InvalidConfiguration(
                    f"vllm provider: invalid `hooks` = {self.settings.hooks!r}: {exc}.",
                    fix="list importable dotted paths such as mypkg.hooks:log_to_file.",
                    field="hooks",
                ) from None
        return self._hooks

    @property
    def usage(self) -> UsageLedger:
        """What this provider generated so far, per endpoint (``provider.usage.summary()``)."""
        return self.client.usage

    @property
    def saidata_constraint(self) -> Constraint | None:
        """What saidata replies are constrained to (``structured_output``), resolved once."""
        if self._saidata_constraint is None:
            from ._structured import saidata_constraint

            try:
                constraint = saidata_constraint(
                    self.settings.structured_output, self.settings.response_schema
                )
            except ValueError as exc:  # the schema file changed since the config was read
                raise InvalidConfiguration(
                    f"vllm provider: invalid `response_schema` = "
                    f"{str(self.settings.response_schema)!r}: {exc}.",
                    fix="give the path of a JSON schema file, or leave it out to use saigen's own "
                    "saidata schema.",
                    field="response_schema",
                ) from None
            self._saidata_constraint = (constraint,)
        return self._saidata_constraint[0]

    @property
    def client(self) -> ResilientClient:
        if self._client is None:
            from ._client import ResilientClient

            self._client = ResilientClient(self.settings, self.hooks, clock=self._clock)
        return self._client

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> LLMResponse:
        """Send chat ``messages`` through the resilient client; return one whole response.
        A ``response_format`` is sent as given, and the reply must honour it."""
        from ._structured import Constraint

        started = time.perf_counter()
        constraint = None
        if response_format is not None:
            constraint = Constraint.from_response_format(response_format)
        result = await self.client.generate(messages, max_tokens=max_tokens, constraint=constraint)
        self._last_model = result.model
        return self._response(result, time.perf_counter() - started)

    def _response(
        self, result: GenerationResult, elapsed: float, content: str | None = None
    ) -> LLMResponse:
        completion = result.completion
        metadata: dict[str, Any] = {
            "provider": "vllm",
            "endpoint": redact_url(completion.endpoint),
            "request_id": completion.request_id,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_s": round(elapsed, 4),
            "generation_s": round(completion.latency, 4),
            "time_to_first_token_s": (
                round(completion.time_to_first_token, 4)
                if completion.time_to_first_token is not None
                else None
            ),
            "attempts": result.attempts,
            "retries": max(0, result.attempts - 1),
            "retry_wait_s": round(result.retry_wait, 3),
            "endpoints_tried": result.endpoints_tried,
            "max_tokens": result.max_tokens,
            "max_model_len": result.max_model_len,
            "prompt_tokens_counted": result.prompt_tokens_counted,
            "prompt_tokens_source": result.prompt_tokens_source,
            "structured_output": result.constraint.kind if result.constraint else None,
            "tensor_parallel_size": self.settings.tensor_parallel_size,
            "gpu_memory_utilization": self.settings.gpu_memory_utilization,
        }
        if completion.reasoning_chars:
            metadata["reasoning_stripped_chars"] = completion.reasoning_chars
        if result.constraint_dropped:
            metadata["structured_output_refused"] = True
        if result.max_tokens != result.requested_max_tokens:
            metadata["max_tokens_clamped_from"] = result.requested_max_tokens
        tokens = completion.total_tokens
        if tokens is None and completion.prompt_tokens is not None:
            tokens = completion.prompt_tokens + (completion.completion_tokens or 0)
        return LLMResponse(
            content=completion.content if content is None else content,
            tokens_used=tokens,
            cost_estimate=0.0,
            model_used=result.model,
            finish_reason=completion.finish_reason,
            metadata=metadata,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients bound to the running event loop."""
        if self._client is not None:
            await self._client.transport.aclose()

    def get_model_requirements(
        self,
        model_name: str | None = None,
        *,
        hardware: str = "gb10",
        context: int | None = None,
        concurrency: int = 1,
    ) -> dict[str, Any] | None:
        """What ``model_name`` (default: the configured model) needs on ``hardware``, per catalog
        variant: the upstream method name, with numbers from the catalog's estimator.
        ``None`` when the model is not in the catalog."""
        from .catalog import load_catalog
        from .catalog.estimator import evaluate

        catalog = load_catalog()
        spec = catalog.find_model(model_name or self.settings.model or "")
        if spec is None:
            return None
        profile = catalog.hardware(hardware)
        ctx = context or min(spec.max_context, 8192)
        fits = [
            evaluate(spec, v.format, profile, context=ctx, concurrency=concurrency)
            for v in spec.all_variants()
        ]
        return {
            "model": spec.id,
            "hardware": profile.name,
            "context_window": spec.max_context,
            "recommended_tensor_parallel": fits[0].tensor_parallel_size,
            "gpu_memory_utilization": profile.gpu_memory_utilization,
            "variants": [fit.as_dict() for fit in fits],
        }

    def _catalog_context(self, name: str) -> int | None:
        from .catalog import load_catalog

        model = load_catalog().find_model(name)
        return model.max_context if model is not None else None
