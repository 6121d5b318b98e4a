from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from saigen_vllm import __version__
from saigen_vllm.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"saigen-vllm, version {__version__}"


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert __version__ in out.stdout


def test_plugins_json_lists_ours_as_loading() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["vllm"]["loads"] is True
    assert rows["vllm"]["distribution"] == "saigen-vllm"


def test_plugins_table() -> None:
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0
    assert "saigen_vllm.provider:VLLMProvider" in result.output
    assert "yes" in result.output


def test_usage_summarises_a_usage_log_with_a_saving(tmp_path: Path) -> None:
    import asyncio

    from saigen_vllm.provider import VLLMProvider
    from tests.support.vllm_sim import VLLMSim

    log = tmp_path / "usage.jsonl"
    with VLLMSim(step=0.002) as sim:
        provider = VLLMProvider({"base_url": sim.base_url, "usage_log": str(log)})

        async def two() -> None:
            await provider.complete([{"role": "user", "content": "a"}])
            await provider.complete([{"role": "user", "content": "b"}])
            await provider.aclose()

        asyncio.run(two())
    result = CliRunner().invoke(
        main, ["usage", str(log), "--json", "--input-price", "1", "--output-price", "10"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["requests_ok"] == 2 and report["completion_tokens"] == 32  # 16 tokens each
    assert report["estimated_saving_usd"] == pytest.approx(
        (report["prompt_tokens"] * 1 + 32 * 10) / 1e6, abs=1e-4
    )
    table = CliRunner().invoke(main, ["usage", str(log)])
    assert table.exit_code == 0 and "total" in table.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    refused = CliRunner().invoke(main, ["usage", str(bad)])
    assert refused.exit_code == 1 and "bad.jsonl:1: not a usage event" in refused.output
