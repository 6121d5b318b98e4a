from __future__ import annotations

import json
import subprocess
import sys

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
