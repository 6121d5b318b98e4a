"""The docs work when followed word for word: every `saigen-vllm` command in a code block of
README.md and docs/*.md runs as shown (those that need no GPU, server or saigen), in order, in
a clean home; every saigen config shown (a YAML block with `llm_providers`, and
examples/saigen-config.yaml) loads through the provider's settings (the doctor's config check)
and through saigen's own config loading (the fake host, under `saigen-vllm run`)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.interpreter import run_fresh

ROOT = Path(__file__).resolve().parent.parent
FAKEHOST = ROOT / "tests" / "fakehost"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

NEEDS_MORE = {
    # command -> what it needs that a test machine does not have
    "wait-ready": "a running server",
    "run": "saigen and a server",
    "usage": "a usage log written by a batch",
}
PRINTS_ONLY = ("--print", "--docker", "--systemd", "--cluster")


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def commands(text: str) -> list[str]:
    """Shell lines that start with `saigen-vllm`, continuation lines joined, comments cut."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        if line.startswith("saigen-vllm ") or line == "saigen-vllm":
            found.append(re.sub(r"\s+#.*$", "", line))
    return found


def needs_more(command: str) -> str | None:
    words = shlex.split(command.split("|")[0].split(">")[0])
    sub = words[1] if len(words) > 1 else ""
    if sub in NEEDS_MORE:
        return NEEDS_MORE[sub]
    if sub in ("serve", "router") and not any(w in PRINTS_ONLY for w in words):
        return "a GPU and vLLM (it starts the server)"
    if sub == "doctor" and "--list-checks" not in words:
        return "a server to diagnose"
    return None


def doc_commands() -> list[tuple[str, list[str]]]:
    """Per document, its runnable commands in the order shown."""
    found = []
    for path in DOCS:
        runnable = [
            command
            for language, text in blocks(path)
            if language in ("bash", "sh", "console", "")
            for command in commands(text)
            if needs_more(command) is None
        ]
        if runnable:
            found.append((path.name, runnable))
    return found


def test_the_docs_show_commands_of_every_kind() -> None:
    """The extraction finds the commands (so the test below cannot pass by finding none)."""
    shown = {c.split()[1] for _, cs in doc_commands() for c in cs if len(c.split()) > 1}
    assert {"serve", "models", "recommend", "router", "doctor"} <= shown


@pytest.mark.parametrize(("doc", "steps"), doc_commands(), ids=lambda v: str(v)[:20])
def test_every_command_in_the_docs_runs_as_shown(
    doc: str, steps: list[str], tmp_path: Path
) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "SAIGEN_VLLM_NVIDIA_SMI": "/nonexistent/nvidia-smi",  # no GPU here: --hardware decides
        "FLEET_KEY": "sk-docs-fleet",  # the variable the router example exports first
        "LANG": "C.UTF-8",
    }
    for command in steps:
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == 0, f"{doc}: `{command}` exited {done.returncode}:\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{doc}: `{command}`:\n{done.stderr}"


def saigen_configs() -> list[tuple[str, str]]:
    found = [
        (f"{path.name}#{index}", text)
        for path in DOCS
        for index, (language, text) in enumerate(blocks(path))
        if language == "yaml" and "llm_providers:" in text
    ]
    example = ROOT / "examples" / "saigen-config.yaml"
    return [*found, (example.name, example.read_text())]


def test_the_docs_show_saigen_configs() -> None:
    assert len(saigen_configs()) >= 4


@pytest.mark.parametrize(("where", "text"), saigen_configs(), ids=lambda v: str(v)[:30])
def test_every_config_shown_loads_and_makes_a_provider(
    where: str, text: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), str(ROOT)])
    doctor = subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "doctor", "--json", "--config", str(path),
         "--check", "config"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    checks = [c for c in json.loads(doctor.stdout)["checks"] if c["id"] == "config.valid"]
    assert checks, f"{where}: no vLLM entry found"
    failed = [c for c in checks if c["status"] == "fail"]
    assert not failed, f"{where}: {failed}"
    # saigen's own loading, as `saigen-vllm run saigen --config FILE` does it
    out = run_fresh(
        f"""
import contextlib, io, json
from saigen_vllm._host_patch import apply, _state
from saigen_vllm.provider import VLLMProvider
apply()
from saigen.utils.config import ConfigManager
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    config = ConfigManager({str(path)!r}).load_config()
made = {{}}
for key, entry in _state.raw.items():
    VLLMProvider(entry)
    made[key] = config.llm_providers[key].provider
print(json.dumps({{"printed": printed.getvalue(), "made": made}}))
""",
        paths=[FAKEHOST, ROOT / "examples"],
    )
    assert not out["printed"], f"{where}: saigen said {out['printed']}"
    assert out["made"] and set(out["made"].values()) == {"vllm"}, f"{where}: {out}"


def test_a_printed_command_shown_in_the_docs_is_what_serve_prints() -> None:
    """gb10-setup.md shows the output of its first `serve --docker`: it must be current."""
    shown = [t.strip() for lang, t in blocks(ROOT / "docs" / "gb10-setup.md") if lang == ""]
    docker = next(t for t in shown if t.startswith("docker run"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAIGEN_VLLM_")}
    out = subprocess.run(
        [sys.executable, "-m", "saigen_vllm", "serve", "Qwen/Qwen3-14B", "--hardware", "gb10",
         "--docker"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == docker
