"""Pick a model for a machine: the best-quality candidate that fits with room to spare and decodes
fast enough, preferring the precision NVIDIA's GB10 playbooks use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from .estimator import HEADROOM, Fit, evaluate
from .schema import Hardware, ModelSpec

Purpose = Literal["saidata", "code", "long-context", "any"]

PLAYBOOK_PREFERENCE = {"nvfp4": 0, "fp8": 1, "mxfp4": 1, "awq-int4": 2, "gptq-int4": 2, "bf16": 3}
"""NVIDIA's DGX Spark playbooks serve NVFP4 and FP8 checkpoints (nvidia/* repos) and gpt-oss in
its native MXFP4; community 4-bit next; bf16 last (twice the bytes per decoded token)."""

MIN_DECODE_TOK_S = {"saidata": 15.0, "code": 15.0, "long-context": 10.0, "any": 0.0}
"""A saidata reply is 1.5-3 k tokens: below ~15 tok/s one package takes over 3 minutes."""


def quality_score(model: ModelSpec) -> float:
    """Dense-equivalent size in billions: parameters, or for MoE the geometric mean of total and
    active parameters (a common rule of thumb, not a benchmark). Newer releases break ties."""
    if model.active_params_b:
        return math.sqrt(model.params_b * model.active_params_b)
    return model.params_b


def _purpose_ok(model: ModelSpec, purpose: Purpose, context: int) -> bool:
    if purpose in ("saidata", "code") and "code" not in model.capabilities:
        return False
    if purpose == "saidata" and "structured_output" not in model.capabilities:
        return False
    return not (purpose == "long-context" and model.max_context < max(context, 32768))


@dataclass(frozen=True)
class Recommendation:
    choice: Fit | None
    alternatives: list[Fit] = field(default_factory=list)
    rejected: list[tuple[Fit, str]] = field(default_factory=list)


def recommend(
    models: tuple[ModelSpec, ...],
    hardware: Hardware,
    *,
    context: int,
    concurrency: int,
    purpose: Purpose = "saidata",
    min_decode_tok_s: float | None = None,
    kv_cache_dtype: str = "auto",
) -> Recommendation:
    floor = MIN_DECODE_TOK_S[purpose] if min_decode_tok_s is None else min_decode_tok_s
    good: list[tuple[tuple[float, int, str], Fit]] = []
    rejected: list[tuple[Fit, str]] = []
    for model in models:
        for variant in model.all_variants():
            fit = evaluate(
                model,
                variant.format,
                hardware,
                context=context,
                concurrency=concurrency,
                kv_cache_dtype=kv_cache_dtype,
            )
            if not _purpose_ok(model, purpose, context):
                rejected.append((fit, f"not suited to {purpose}"))
            elif not fit.fits:
                rejected.append((fit, fit.reason))
            elif fit.total_gb > fit.budget_gb * HEADROOM:
                rejected.append(
                    (fit, "fits, but with less than 10 % of the memory budget to spare")
                )
            elif fit.decode_tok_s is not None and fit.decode_tok_s < floor:
                rejected.append(
                    (fit, f"decode ceiling {fit.decode_tok_s} tok/s is below {floor:g} tok/s")
                )
            else:
                key = (
                    -quality_score(model),
                    PLAYBOOK_PREFERENCE[variant.format],
                    _invert(model.released),
                )
                good.append((key, fit))
    good.sort(key=lambda item: item[0])
    fits = [fit for _, fit in good]
    return Recommendation(fits[0] if fits else None, fits[1:6], rejected)


def _invert(released: str) -> str:
    """Sort newer releases first inside an ascending sort."""
    return "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c for c in released)
