"""What this machine has: GPUs from ``nvidia-smi``, memory from ``/proc/meminfo``.

GB10 (DGX Spark) reports "Not Supported" / "[N/A]" for GPU memory through NVML: its memory is the
host's unified memory, so it is read from /proc/meminfo instead (as vLLM itself does for (12, 1)).
Never imports openai or httpx.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NVIDIA_SMI_QUERY = "name,driver_version,memory.total,memory.used,compute_cap"


@dataclass(frozen=True)
class GPU:
    name: str
    driver: str
    memory_total_mib: float | None
    memory_used_mib: float | None
    compute_capability: str | None

    @property
    def is_gb10(self) -> bool:
        return "GB10" in self.name.upper() or self.compute_capability == "12.1"


@dataclass(frozen=True)
class MachineInfo:
    architecture: str
    gpus: list[GPU] = field(default_factory=list)
    cuda_version: str | None = None
    mem_total_bytes: int | None = None
    mem_available_bytes: int | None = None
    nvidia_smi: str | None = None
    error: str | None = None

    @property
    def is_gb10(self) -> bool:
        return any(gpu.is_gb10 for gpu in self.gpus)

    @property
    def unified_memory(self) -> bool:
        return self.is_gb10 or any(gpu.memory_total_mib is None for gpu in self.gpus)

    @property
    def profile_name(self) -> str | None:
        """The catalog hardware profile that matches this machine, if any."""
        if self.is_gb10:
            return "gb10"
        names = " ".join(gpu.name.upper() for gpu in self.gpus)
        for needle, profile in (
            ("H200", "h200"),
            ("H100", "h100"),
            ("A100", "a100-80gb"),
            ("L40S", "l40s"),
            ("4090", "rtx4090"),
            ("RTX 6000 ADA", "rtx6000-ada"),
        ):
            if needle in names:
                return profile
        return None


def _number(text: str) -> float | None:
    text = text.strip().split(" ")[0]
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "Not Supported"


def parse_nvidia_smi_csv(text: str) -> list[GPU]:
    gpus = []
    for line in text.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 5:
            continue
        gpus.append(
            GPU(
                name=parts[0],
                driver=parts[1],
                memory_total_mib=_number(parts[2]),
                memory_used_mib=_number(parts[3]),
                compute_capability=parts[4] if _number(parts[4]) is not None else None,
            )
        )
    return gpus


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key.strip()] = int(fields[0]) * 1024  # kB
    return values.get("MemTotal"), values.get("MemAvailable")


def parse_cuda_version(text: str) -> str | None:
    marker = "CUDA Version:"
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split("|")[0].strip() or None


def detect(timeout: float = 5.0) -> MachineInfo:
    """Query this machine; never raises (errors land in ``error``)."""
    arch = platform.machine()
    total = available = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total, available = parse_meminfo(meminfo.read_text())
    smi = os.environ.get("SAIGEN_VLLM_NVIDIA_SMI") or shutil.which("nvidia-smi")
    if not smi:
        return MachineInfo(arch, mem_total_bytes=total, mem_available_bytes=available)
    try:
        query = subprocess.run(
            [smi, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        banner = subprocess.run([smi], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return MachineInfo(
            arch,
            mem_total_bytes=total,
            mem_available_bytes=available,
            nvidia_smi=smi,
            error=f"nvidia-smi failed: {exc}",
        )
    if query.returncode != 0:
        return MachineInfo(
            arch,
            mem_total_bytes=total,
            mem_available_bytes=available,
            nvidia_smi=smi,
            error=f"nvidia-smi exited {query.returncode}: {query.stderr.strip()}",
        )
    return MachineInfo(
        arch,
        gpus=parse_nvidia_smi_csv(query.stdout),
        cuda_version=parse_cuda_version(banner.stdout),
        mem_total_bytes=total,
        mem_available_bytes=available,
        nvidia_smi=smi,
    )
