"""Checks of this machine: GPUs, unified memory, and what the configured model needs here."""

from __future__ import annotations

from .._hf_token import hf_token_source
from ..hardware import detect
from .context import DoctorContext
from .model import CheckResult, Status
from .registry import check

GIB = 2**30


@check("hardware.gpu", "GPUs on this machine (nvidia-smi)")
async def gpu(ctx: DoctorContext) -> CheckResult:
    machine = ctx.machine = detect()
    if machine.error:
        return CheckResult(
            "hardware.gpu",
            Status.WARN,
            machine.error,
            "check the NVIDIA driver (`nvidia-smi` must run)",
        )
    if not machine.gpus:
        return CheckResult(
            "hardware.gpu",
            Status.INFO,
            f"no NVIDIA GPU here ({machine.architecture}): a client-only machine",
            details={"architecture": machine.architecture},
        )
    names = ", ".join(g.name for g in machine.gpus)
    details = {
        "gpus": [g.__dict__ for g in machine.gpus],
        "driver": machine.gpus[0].driver,
        "cuda": machine.cuda_version,
        "profile": machine.profile_name,
    }
    summary = f"{names}; driver {machine.gpus[0].driver}, CUDA {machine.cuda_version or '?'}"
    if machine.is_gb10:
        summary += " (GB10 recognised: unified memory)"
    return CheckResult("hardware.gpu", Status.OK, summary, details=details)


@check("hardware.memory", "memory for the configured model", requires=("hardware.gpu",))
async def memory(ctx: DoctorContext) -> CheckResult:
    from ..catalog import load_catalog
    from ..catalog.estimator import GB, weights_gb

    machine = ctx.machine or detect()
    if not machine.gpus:
        return CheckResult("hardware.memory", Status.SKIPPED, "no local GPU: nothing to size")
    details: dict[str, object] = {}
    if machine.unified_memory:
        total, available = machine.mem_total_bytes, machine.mem_available_bytes
        source = "/proc/meminfo (NVML reports no memory on unified-memory GPUs)"
    else:
        gpu0 = machine.gpus[0]
        total = int((gpu0.memory_total_mib or 0) * 2**20) or None
        used = int((gpu0.memory_used_mib or 0) * 2**20)
        available = total - used if total else None
        source = "nvidia-smi"
    details.update(
        total_gib=round((total or 0) / GIB, 1),
        available_gib=round((available or 0) / GIB, 1),
        source=source,
    )
    summary = f"{(available or 0) / GIB:.1f} of {(total or 0) / GIB:.1f} GiB free ({source})"
    catalog = load_catalog()
    needs = []
    for target in ctx.valid_targets():
        name = ctx.model_name(target)
        spec = catalog.find_model(name) if name else None
        if spec is not None and name is not None:
            needs.append((name, weights_gb(spec, spec.precision_of(name)) * GB))
    hint = None
    status = Status.OK
    for name, weight_bytes in needs:
        details[f"weights_gb[{name}]"] = round(weight_bytes / 1e9, 1)
        serving_here = any(f.reachable for f in ctx.facts.values())
        if available is not None and weight_bytes > available and not serving_here:
            status = Status.FAIL
            hint = (
                f"{name} needs {weight_bytes / 1e9:.0f} GB for weights alone: pick a smaller "
                "precision (`saigen-vllm recommend`)"
            )
    utilizations = [t.settings.gpu_memory_utilization for t in ctx.valid_targets() if t.settings]
    if machine.unified_memory and utilizations and max(utilizations) > 0.87:
        status = Status.WARN if status is Status.OK else status
        hint = hint or (
            "on unified memory use --gpu-memory-utilization 0.8 (0.80-0.87) and "
            "`sync; echo 3 > /proc/sys/vm/drop_caches` before starting vLLM"
        )
    return CheckResult("hardware.memory", status, summary, hint, details)


@check("hf.token", "Hugging Face token for gated models", requires=("server.models",))
async def hf_token(ctx: DoctorContext) -> CheckResult:
    from ..catalog import load_catalog

    catalog = load_catalog()
    gated = []
    for target in ctx.valid_targets():
        name = ctx.model_name(target)
        spec = catalog.find_model(name) if name else None
        if spec is not None and spec.gated and name is not None and name.lower() == spec.id.lower():
            gated.append(spec.id)
    present = hf_token_source()
    if not gated:
        return CheckResult(
            "hf.token",
            Status.OK,
            "no gated model configured" + (" (a token is present)" if present else ""),
        )
    if present:
        return CheckResult(
            "hf.token",
            Status.OK,
            f"token in {present} for gated {', '.join(gated)} (not shown)",
        )
    return CheckResult(
        "hf.token",
        Status.WARN,
        f"{', '.join(gated)} is gated and no Hugging Face token is set",
        "on the machine that runs vLLM: accept the licence on huggingface.co, then "
        "`export HF_TOKEN=...` or `hf auth login`",
        {"gated": gated},
    )
