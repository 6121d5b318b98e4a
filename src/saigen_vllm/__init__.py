"""saigen-vllm: a vLLM provider for saigen, a GB10 model-hardware catalog, and a doctor.

The names below load lazily, so ``import saigen_vllm`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._host import GenerationContext
    from .provider import VLLMProvider
    from .settings import VLLMSettings, load_settings

__all__ = ["GenerationContext", "VLLMProvider", "VLLMSettings", "__version__", "load_settings"]

_LAZY = {
    "GenerationContext": "saigen_vllm._host",
    "VLLMProvider": "saigen_vllm.provider",
    "VLLMSettings": "saigen_vllm.settings",
    "load_settings": "saigen_vllm.settings",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'saigen_vllm' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
