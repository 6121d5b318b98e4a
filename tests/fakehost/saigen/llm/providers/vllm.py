"""Stand-in for saigen's in-tree vLLM provider: what plain saigen uses for the `vllm` key. It
reads `api_base` only (so a `base_url` is lost) and fails with a message that names it, so a
test can tell it was used instead of the plugin."""

from typing import Any

from .base import BaseLLMProvider, ConnectionError


class VLLMProvider(BaseLLMProvider):
    def _validate_config(self) -> None:
        self.api_base = self.config.get("api_base") or "http://localhost:8000/v1"

    async def generate_saidata(self, context: Any) -> Any:
        raise ConnectionError(f"in-tree vllm provider: cannot reach {self.api_base}")

    def is_available(self) -> bool:
        return True

    def get_model_info(self) -> Any:
        raise NotImplementedError

    async def validate_connection(self) -> bool:
        return False
