"""Pick a model for a machine. The rule, as `recommend` prints it:

1. it fits with 10 % of the memory budget to spare, at the requested context x concurrency;
2. its expected decode at that context meets the floor: the roofline ceiling with the context's
   KV cache read, times the efficiency the catalog's own measurements show (the median of
   measured / ceiling over its batch-1 GB10 measurements);
3. among those, on a GB10 a model NVIDIA's DGX Spark playbooks serve comes first (tested on the
   hardware, with recipes); then the largest dense-equivalent size (a proxy for quality: total
   parameters, or for MoE the geometric mean of total and active); then the playbooks' precision
   (NVFP4, FP8, native MXFP4 before community 4-bit and bf16); then the newer release."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median
from typing import Literal

from .estimator import HEADROOM, Fit, decode_roofline, evaluate
from .schema import Hardware, Measurement, ModelSpec

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


def measured_efficiency(
    measurements: tuple[Measurement, ...], models: tuple[ModelSpec, ...], gb10: Hardware
) -> float:
    """Median of measured / roofline over the batch-1 measurements (GB10), leaving out
    llama.cpp (its own MXFP4 layout reads fewer bytes than the catalog counts)."""
    by_id = {model.id: model for model in models}
    ratios = []
    for item in measurements:
        if item.batch != 1 or item.engine == "llama.cpp" or item.model not in by_id:
            continue
        ceiling = decode_roofline(by_id[item.model], item.precision, gb10)
        if ceiling:
            ratios.append(item.decode_tok_s / ceiling)
    return round(median(ratios), 2) if ratios else 1.0


def _purpose_ok(model: ModelSpec, purpose: Purpose, context: int) -> bool:
    if purpose in ("saidata", "code") and "code" not in model.capabilities:
        return False
    if purpose == "saidata" and "structured_output" not in model.capabilities:
        return False
    return not (purpose == "long-context" and model.longest_context < max(context, 32768))


@dataclass(frozen=True)
class Recommendation:
    choice: Fit | None
    alternatives: list[Fit] = field(default_factory=list)
    rejected: list[tuple[Fit, str]] = field(default_factory=list)
    reason: str = ""
    """why the choice came first, in words"""
    efficiency: float = 1.0


def recommend(
    models: tuple[ModelSpec, ...],
    hardware: Hardware,
    *,
    context: int,
    concurrency: int,
    purpose: Purpose = "saidata",
    min_decode_tok_s: float | None = None,
    kv_cache_dtype: str = "auto",
    efficiency: float = 1.0,
) -> Recommendation:
    floor = MIN_DECODE_TOK_S[purpose] if min_decode_tok_s is None else min_decode_tok_s
    on_gb10 = hardware.name.startswith("gb10")
    good: list[tuple[tuple[int, float, int, str], Fit, ModelSpec]] = []
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
            elif (expected := _expected(fit, efficiency)) is not None and expected < floor:
                rejected.append(
                    (
                        fit,
                        f"expected {expected:.1f} tok/s at {context} tokens (ceiling "
                        f"{fit.decode_tok_s_at_context} x measured efficiency {efficiency:g}) "
                        f"is below {floor:g} tok/s",
                    )
                )
            else:
                key = (
                    0 if on_gb10 and model.playbook else 1,
                    -quality_score(model),
                    PLAYBOOK_PREFERENCE[variant.format],
                    _invert(model.released),
                )
                good.append((key, fit, model))
    if not good:
        return Recommendation(None, [], rejected, "", efficiency)
    good.sort(key=lambda item: item[0])
    _, choice, spec = good[0]
    reason = _reason(spec, choice, on_gb10, efficiency)
    return Recommendation(choice, [fit for _, fit, _ in good[1:6]], rejected, reason, efficiency)


def _expected(fit: Fit, efficiency: float) -> float | None:
    ceiling = fit.decode_tok_s_at_context
    return None if ceiling is None else round(ceiling * efficiency, 1)


def _reason(model: ModelSpec, fit: Fit, on_gb10: bool, efficiency: float) -> str:
    parts = []
    if on_gb10 and model.playbook:
        parts.append(f"NVIDIA serves it on the DGX Spark ({model.playbook})")
    parts.append(f"the largest that fits ({quality_score(model):.1f}B dense-equivalent)")
    expected = _expected(fit, efficiency)
    if expected is not None:
        parts.append(f"about {expected:g} tok/s per request expected at {fit.context} tokens")
    return "; ".join(parts)


def _invert(released: str) -> str:
    """Sort newer releases first inside an ascending sort."""
    return "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c for c in released)
