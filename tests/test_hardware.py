"""GPU profiles are matched by the name nvidia-smi reports and the memory it reports, not by a
substring: an A100 40 GB is not the 80 GB profile, a GH200 is not an H200; a GPU without a
profile is planned from its own memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saigen_vllm.catalog import load_catalog
from saigen_vllm.cli import main
from saigen_vllm.hardware import GPU, MachineInfo, built_profile, match_profile

PROFILES = load_catalog().hardware_profiles


def gpu(name: str, mib: float | None, cc: str = "9.0") -> GPU:
    return GPU(name=name, driver="580", memory_total_mib=mib, memory_used_mib=0,
               compute_capability=cc)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "mib", "cc", "profile"),
    [
        ("NVIDIA GB10", None, "12.1", "gb10"),
        ("NVIDIA H100 80GB HBM3", 81559, "9.0", "h100"),
        ("NVIDIA H100 PCIe", 81559, "9.0", None),  # other memory bandwidth than the SXM profile
        ("NVIDIA H100 NVL", 95830, "9.0", None),
        ("NVIDIA H200", 143771, "9.0", "h200"),
        ("NVIDIA H200 NVL", 143771, "9.0", "h200"),
        ("NVIDIA GH200 480GB", 97871, "9.0", None),  # not an H200
        ("NVIDIA A100-SXM4-80GB", 81920, "8.0", "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", 40960, "8.0", None),  # the same name, half the memory
        ("NVIDIA L40S", 46068, "8.9", "l40s"),
        ("NVIDIA GeForce RTX 4090", 24564, "8.9", "rtx4090"),
        ("NVIDIA RTX 6000 Ada Generation", 49140, "8.9", "rtx6000-ada"),
        ("NVIDIA GeForce RTX 5090", 32607, "12.0", None),
    ],
)
def test_match_by_name_and_memory(
    name: str, mib: float | None, cc: str, profile: str | None
) -> None:
    found = match_profile(gpu(name, mib, cc), PROFILES)
    assert (found.name if found else None) == profile


def test_a_gpu_without_profile_is_planned_from_its_memory() -> None:
    built = built_profile(gpu("NVIDIA A100-SXM4-40GB", 40960, "8.0"))
    assert built is not None and built.memory_gib == 40 and built.bandwidth_gbs is None
    machine = MachineInfo(architecture="x86_64", gpus=[gpu("NVIDIA A100-SXM4-40GB", 40960)])
    assert machine.profile_name is None and machine.profile() == built


def fake_smi(tmp_path: Path, line: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n  --query-gpu*) echo "{line}" ;;\n'
        '  *) echo "| NVIDIA-SMI 580   Driver Version: 580   CUDA Version: 13.0 |" ;;\nesac\n'
    )
    script.chmod(0o755)
    return script


def test_serve_on_an_a100_40gb_is_not_planned_as_the_80gb_profile(tmp_path: Path) -> None:
    smi = fake_smi(tmp_path, "NVIDIA A100-SXM4-40GB, 580.95, 40960, 0, 8.0")
    result = CliRunner().invoke(
        main,
        ["serve", "Qwen/Qwen3-32B", "--precision", "bf16", "--print"],
        env={"SAIGEN_VLLM_NVIDIA_SMI": str(smi)},
    )
    # 65.5 GB of bf16 weights fit the 80 GB profile's budget but not 40 GiB
    assert result.exit_code == 1, result.output
    assert "does not fit NVIDIA A100-SXM4-40GB" in result.stderr
    result = CliRunner().invoke(
        main, ["serve", "Qwen/Qwen3-8B", "--print"], env={"SAIGEN_VLLM_NVIDIA_SMI": str(smi)}
    )
    assert result.exit_code == 0 and "no catalog profile" in result.output
