"""The model-hardware catalog: sourced package data plus the arithmetic of serving it with vLLM.

No I/O besides reading the package data; never imports openai or httpx.

    >>> from saigen_vllm.catalog import load_catalog
    >>> catalog = load_catalog()
    >>> fit = catalog.evaluate("meta-llama/Llama-3.1-8B-Instruct", "fp8", "gb10", context=8192,
    ...                        concurrency=15)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

from .estimator import Fit, evaluate
from .schema import PRECISIONS, Hardware, Measurement, ModelSpec, Variant

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "PRECISIONS",
    "Catalog",
    "Fit",
    "Hardware",
    "Measurement",
    "ModelSpec",
    "Variant",
    "load_catalog",
]


def _read(name: str) -> dict[str, Any]:
    text = files(__package__).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return data


class UnknownName(LookupError):
    """A model or hardware name the catalog does not have; the message lists what it has."""


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelSpec, ...]
    hardware_profiles: tuple[Hardware, ...]
    measurements: tuple[Measurement, ...]

    def find_model(self, name: str) -> ModelSpec | None:
        """By HF id, by a variant's repo id, or by the last path part (case-insensitive)."""
        wanted = name.strip().lower()
        for model in self.models:
            repos = [model.id] + [variant.repo for variant in model.variants]
            if wanted in (repo.lower() for repo in repos):
                return model
        for model in self.models:
            if model.id.lower().rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]:
                return model
        return None

    def request_defaults(self, name: str) -> dict[str, Any]:
        """Request fields a generation job wants for the model served as ``name`` (thinking
        off for models that think by default); empty for a model the catalog does not know."""
        spec = self.find_model(name)
        return dict(spec.request_defaults) if spec is not None else {}

    def model(self, name: str) -> ModelSpec:
        found = self.find_model(name)
        if found is None:
            known = ", ".join(m.id for m in self.models)
            raise UnknownName(f"model {name!r} is not in the catalog; it has: {known}")
        return found

    def hardware(self, name: str) -> Hardware:
        for profile in self.hardware_profiles:
            if profile.name == name.strip().lower():
                return profile
        known = ", ".join(p.name for p in self.hardware_profiles)
        raise UnknownName(f"hardware {name!r} is not in the catalog; it has: {known}")

    def evaluate(
        self,
        model: str,
        precision: str,
        hardware: str,
        *,
        context: int,
        concurrency: int,
        kv_cache_dtype: str = "auto",
    ) -> Fit:
        return evaluate(
            self.model(model),
            precision,
            self.hardware(hardware),
            context=context,
            concurrency=concurrency,
            kv_cache_dtype=kv_cache_dtype,
        )

    def table(
        self, hardware: str, *, context: int, concurrency: int, kv_cache_dtype: str = "auto"
    ) -> list[Fit]:
        """Every model x precision in the catalog on ``hardware``."""
        profile = self.hardware(hardware)
        return [
            evaluate(
                model,
                variant.format,
                profile,
                context=context,
                concurrency=concurrency,
                kv_cache_dtype=kv_cache_dtype,
            )
            for model in self.models
            for variant in model.all_variants()
        ]


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    models = tuple(ModelSpec.model_validate(item) for item in _read("models.toml")["models"])
    hardware = tuple(Hardware.model_validate(item) for item in _read("hardware.toml")["hardware"])
    measured = tuple(
        Measurement.model_validate(item) for item in _read("measurements.toml")["measured"]
    )
    return Catalog(models, hardware, measured)
