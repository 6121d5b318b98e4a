"""What this machine has: GPUs from ``nvidia-smi``, memory from ``/proc/meminfo``.

GB10 (DGX Spark) reports "Not Supported" / "[N/A]" for GPU memory through NVML: its memory is the
host's unified memory, so it is read from /proc/meminfo instead (as vLLM itself does for (12, 1)).
Never imports openai or httpx.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog.schema import Hardware

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
        """The catalog hardware profile that matches this machine (by the GPU's name and the
        memory it reports), if any."""
        found = self.matched_profile()
        return found.name if found is not None else None

    def matched_profile(self) -> Hardware | None:
        from .catalog import load_catalog

        if not self.gpus:
            return None
        return match_profile(self.gpus[0], load_catalog().hardware_profiles)

    def profile(self) -> Hardware | None:
        """The matching catalog profile, else one built from what nvidia-smi reports (its
        memory; bandwidth unknown); None without a GPU."""
        found = self.matched_profile()
        if found is not None or not self.gpus:
            return found
        return built_profile(self.gpus[0])


MEMORY_TOLERANCE = 0.08
"""How far the memory a GPU reports may be from its profile's (the same model in another
memory size, an A100 40 GB against the 80 GB profile, must not match)."""


def _names(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])", re.I)


def match_profile(gpu: GPU, profiles: Iterable[Hardware]) -> Hardware | None:
    """The profile whose name patterns match ``gpu``'s name (whole words: GH200 is not H200)
    and whose memory is the memory ``gpu`` reports (within 8 %). A GB10 reports no memory of its
    own (unified): its name or compute capability decides."""
    for profile in profiles:
        if profile.nodes > 1 or not any(_names(p).search(gpu.name) for p in profile.match):
            continue
        if gpu.memory_total_mib is None:
            if profile.unified_memory and gpu.is_gb10:
                return profile
            continue
        reported_gib = gpu.memory_total_mib / 1024
        if abs(reported_gib - profile.memory_gib) <= MEMORY_TOLERANCE * profile.memory_gib:
            return profile
    if gpu.is_gb10:  # by compute capability 12.1 when the name is unusual
        return next((p for p in profiles if p.name == "gb10"), None)
    return None


def built_profile(gpu: GPU) -> Hardware | None:
    """A profile for a GPU the catalog does not list, from the memory it reports."""
    from .catalog.schema import Hardware

    if gpu.memory_total_mib is None:
        return None
    return Hardware(
        name="this-gpu",
        title=f"{gpu.name} (as nvidia-smi reports it)",
        gpus=1,
        nodes=1,
        memory_gib=round(gpu.memory_total_mib / 1024, 2),
        bandwidth_gbs=None,
        unified_memory=False,
        gpu_memory_utilization=0.92,
        source="nvidia-smi memory.total on this machine; 0.92 is vLLM 0.32's default",
    )


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
