"""Every command, fed the bad inputs a new user gives it: one clear message, exit status 2
(usage: the command line is wrong) or 1 (it ran and failed), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saigen_vllm.cli import main
from tests.support.fault_server import closed_port

DEAD = f"http://127.0.0.1:{closed_port()}"


def files(tmp: Path) -> dict[str, str]:
    (tmp / "bad.yaml").write_text("llm_providers: {vllm: {base_url: x\n")
    (tmp / "no-providers.yaml").write_text("llm_providers: 5\n")
    (tmp / "bad.jsonl").write_text("not json\n")
    (tmp / "open.key").write_text("sk-readable\n")
    (tmp / "open.key").chmod(0o644)
    return {"TMP": str(tmp)}


# (command line, exit status, words the message must contain)
ROWS: list[tuple[str, int, str]] = [
    ("--bogus", 2, "No such option"),
    ("nosuchcommand", 2, "No such command"),
    ("plugins --bogus", 2, "No such option"),
    ("doctor --check server.nope", 2, "unknown check id"),
    ("doctor --config {TMP}/missing.yaml", 2, "cannot read --config"),
    ("doctor --config {TMP}/bad.yaml", 2, "not valid YAML (line 2"),
    ("doctor --config {TMP}/no-providers.yaml", 2, "no `llm_providers` mapping"),
    ("doctor --base-url gb10:8000 --check config", 1, "failed"),
    ("doctor --base-url http://[::1 --check config", 1, "failed"),
    ("doctor --base-url " + DEAD + "/v1 --check server.reachable", 1, "failed"),
    ("models --hardware nope", 2, "not in the catalog"),
    ("models --context 0", 2, "not in the range"),
    ("models --context abc", 2, "not a valid integer"),
    ("models --concurrency -1", 2, "not in the range"),
    ("recommend --hardware nope", 2, "not in the catalog"),
    ("recommend --context 99999999 --hardware gb10", 1, "shorter context"),
    ("serve", 2, "Missing argument"),
    ("serve '' --print", 2, "name a model"),
    ("serve Qwen/Qwen3-8B --hardware nope --print", 2, "not in the catalog"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --precision int3 --print", 2, "int3"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --context 999999 --print", 1, "at most"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --port 0 --print", 2, "not in the range"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --print -- --port abc", 1, "not a port number"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --print -- --api-key sk-x", 1, "SAIGEN_VLLM_API_KEY"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --print --api-key sk-x", 2, "visible"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --api-key-file {TMP}/missing --print", 2, "cannot read"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --api-key-file {TMP}/open.key --print", 2, "chmod 600"),
    ("serve Qwen/Qwen3-8B --hardware gb10 --host 0.0.0.0 --print", 1, "without an API key"),
    ("serve Qwen/Qwen3-8B --hardware gb10x2 --print", 1, "--cluster 2"),
    ("serve Qwen/Qwen3-8B --cluster 3", 2, "not in the range"),
    ("serve Qwen/Qwen3-8B --cluster 2 --systemd", 2, "no systemd form"),
    ("serve nvidia/Qwen3-8B-NVFP4 --hardware gb10 --precision fp8 --print", 1, "nvfp4 variant"),
    (
        "serve Qwen/Qwen3-8B --hardware gb10 --vllm-python {TMP}/nope --no-gpu-check",
        1,
        "not an executable Python",
    ),
    ("serve Qwen/Qwen3-8B --hardware gb10 --gpu-memory-utilization 1.5 --print", 2, "range"),
    ("wait-ready", 2, "Missing argument"),
    ("wait-ready gb10:8000", 2, "http:// or https://"),
    ("wait-ready http://[::1", 2, "Invalid IPv6 URL"),
    ("wait-ready http://127.0.0.1:99999/v1", 2, "port"),
    ("wait-ready ftp://gb10/v1", 2, "http:// or https://"),
    ("wait-ready " + DEAD + "/v1 --timeout -5", 2, "not in the range"),
    ("wait-ready " + DEAD + "/v1 --timeout 0.5", 1, "not ready after 0.5s"),
    ("usage {TMP}/missing.jsonl", 2, "does not exist"),
    ("usage {TMP}/bad.jsonl", 1, "not a usage event"),
    ("usage {TMP}/bad.jsonl --input-price abc", 2, "not a valid float"),
    ("router", 2, "Missing argument"),
    ("router notaurl --print", 1, "not an http:// or https:// URL"),
    ("router " + DEAD + " --host 0.0.0.0 --print", 1, "require no key"),
    ("router " + DEAD + " --api-key-env SAIGEN_TEST_UNSET_VAR --print", 1, "is empty"),
    ("router " + DEAD + " --policy random --print", 2, "random"),
    ("run", 2, "Missing argument"),
    ("run nosuchprogram-xyz", 2, "neither a console script"),
    ("run -m no.such.module", 2, "no module"),
    ("run -m", 2, "needs a module name"),
]


@pytest.mark.parametrize(("line", "code", "says"), ROWS, ids=[row[0][:60] for row in ROWS])
def test_bad_input_gets_a_clear_message_and_no_traceback(
    line: str, code: int, says: str, tmp_path: Path
) -> None:
    import shlex

    args = shlex.split(line.format(**files(tmp_path)))
    result = CliRunner().invoke(main, args, env={"SAIGEN_VLLM_NVIDIA_SMI": "/nonexistent"})
    shown = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{line}: raised {result.exception!r}"
    )
    assert "Traceback" not in shown
    assert result.exit_code == code, f"{line}: exit {result.exit_code}\n{shown}"
    assert says in shown, f"{line}: {shown}"


def test_the_table_covers_every_command() -> None:
    covered = {row[0].split()[0] for row in ROWS}
    assert set(main.commands) <= covered, set(main.commands) - covered
