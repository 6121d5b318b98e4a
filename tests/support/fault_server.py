"""A misbehaving OpenAI-compatible HTTP server on 127.0.0.1, scripted per request.

A real server on a real socket (asyncio streams, in a background thread), not an HTTP mock: the
client's connection handling, timeouts and parsers all run for real. Each request to
``/v1/chat/completions`` takes the next behaviour from the script (``ok`` once it is empty);
``/v1/models``, ``/health`` and ``/tokenize`` have their own scripts.

    with FaultServer() as server:
        server.script_chat(Status(503, retry_after=1), Ok())
        ...                                  # base_url = server.base_url
        assert server.count("/v1/chat/completions") == 2
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

MODEL = "fault-model"
MAX_MODEL_LEN = 4096


# -- behaviours ----------------------------------------------------------------------------------


@dataclass
class Ok:
    """A healthy streamed completion (or JSON for non-stream requests)."""

    content: str = 'version: "0.3"\nmetadata:\n  name: nginx\n'
    finish_reason: str = "stop"
    chunk_delay: float = 0.0
    chunks: int = 4


@dataclass
class Status:
    """Answer ``code`` with a JSON error body in the nested (>= 0.10.1) or flat envelope."""

    code: int
    message: str = "boom"
    flat: bool = False
    retry_after: float | None = None
    retry_after_ms: int | None = None
    raw_body: str | None = None


@dataclass
class Reset:
    """Accept, read the request, then reset the connection (RST)."""


@dataclass
class Silent:
    """Accept, read the request, never answer."""


@dataclass
class HeadersThenStall:
    """Send 200 and SSE headers, then nothing."""


@dataclass
class StallMidStream:
    """Send some chunks, then nothing."""

    chunks: int = 2


@dataclass
class Truncate:
    """Promise a JSON body by Content-Length, send half, close."""


@dataclass
class MalformedStream:
    """A 200 SSE stream whose event is not JSON."""


@dataclass
class InBandError:
    """A 200 SSE stream that reports an error event, then [DONE]."""

    message: str = "engine crashed mid-stream"
    code: int = 500


@dataclass
class EndWithoutFinish:
    """A 200 SSE stream that ends (clean [DONE]) without any finish_reason."""


@dataclass
class Drip:
    """Headers, then one byte every ``every`` seconds of a body that never ends."""

    every: float = 0.5


@dataclass
class Flood:
    """``size`` bytes of body (an event stream: one line with no break in it)."""

    size: int
    event_stream: bool = False


@dataclass
class JSONReply:
    """Any JSON body with a status (for /v1/models, /tokenize, /health...)."""

    body: Any
    code: int = 200


Behaviour = Any


def _models_body(
    max_model_len: int | None = MAX_MODEL_LEN, names: tuple[str, ...] = (MODEL,)
) -> Any:
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "vllm",
                "root": name,
                "parent": None,
                "max_model_len": max_model_len,
            }
            for name in names
        ],
    }


def models_reply(*names: str, max_model_len: int | None = MAX_MODEL_LEN) -> JSONReply:
    return JSONReply(_models_body(max_model_len, names or (MODEL,)))


# -- the server ----------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    body: bytes
    at: float
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


ServerT = TypeVar("ServerT", bound="LoopbackHTTPServer")


class LoopbackHTTPServer:
    """An HTTP/1.1 server on 127.0.0.1 in a background thread; subclasses answer requests."""

    def __init__(self, *, model: str = MODEL, max_model_len: int = MAX_MODEL_LEN) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.received: list[Received] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def count(self, path: str) -> int:
        return sum(1 for request in self.received if request.path == path)

    def requests(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _started(self) -> None:
        """Called in the server's loop once it listens (start background tasks here)."""

    async def _respond(self, request: Received, writer: asyncio.StreamWriter) -> bool:
        raise NotImplementedError

    # lifecycle
    def __enter__(self: ServerT) -> ServerT:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            loop.run_until_complete(self._started())
            ready.set()
            loop.run_forever()
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # handling
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                self.received.append(request)
                keep_open = await self._respond(request, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a client went away, or the server is shutting down
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Received | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = await reader.readexactly(length) if length else b""
        return Received(method, target.split("?")[0], body, time.monotonic(), headers)


class FaultServer(LoopbackHTTPServer):
    """Scripted misbehaviour per path (``ok`` once a script is empty)."""

    def __init__(self, *, model: str = MODEL, max_model_len: int = MAX_MODEL_LEN) -> None:
        super().__init__(model=model, max_model_len=max_model_len)
        self._scripts: dict[str, deque[Behaviour]] = {}
        self.tokenize_count: int | None = 100

    def script(self, path: str, *behaviours: Behaviour) -> None:
        self._scripts.setdefault(path, deque()).extend(behaviours)

    def script_chat(self, *behaviours: Behaviour) -> None:
        self.script("/v1/chat/completions", *behaviours)

    def _next(self, path: str, default: Behaviour) -> Behaviour:
        queue = self._scripts.get(path)
        return queue.popleft() if queue else default

    async def _respond(self, request: Received, writer: asyncio.StreamWriter) -> bool:
        path = request.path
        if path == "/v1/models":
            behaviour = self._next(path, JSONReply(_models_body(self.max_model_len, (self.model,))))
        elif path == "/health":
            behaviour = self._next(path, JSONReply(None))
        elif path == "/version":
            behaviour = self._next(path, JSONReply({"version": "0.0.0-fault"}))
        elif path == "/tokenize":
            default = (
                JSONReply({"count": self.tokenize_count, "max_model_len": self.max_model_len})
                if self.tokenize_count is not None
                else JSONReply({"detail": "Not Found"}, 404)
            )
            behaviour = self._next(path, default)
        elif path == "/metrics":
            behaviour = self._next(path, JSONReply("vllm:num_requests_waiting 0\n"))
        elif path == "/v1/chat/completions":
            behaviour = self._next(path, Ok())
        else:
            behaviour = JSONReply({"detail": "Not Found"}, 404)
        return await self._perform(behaviour, request, writer)

    async def _perform(
        self, behaviour: Behaviour, request: Received, writer: asyncio.StreamWriter
    ) -> bool:
        streaming = bool((request.json() or {}).get("stream")) if request.body else False
        if isinstance(behaviour, JSONReply):
            body = behaviour.body
            if isinstance(body, str):
                await _send(writer, behaviour.code, body.encode(), "text/plain")
            else:
                await _send(writer, behaviour.code, json.dumps(body).encode())
            return True
        if isinstance(behaviour, Status):
            if behaviour.raw_body is not None:
                payload = behaviour.raw_body.encode()
            elif behaviour.flat:
                payload = json.dumps(
                    {
                        "object": "error",
                        "message": behaviour.message,
                        "type": "BadRequestError",
                        "param": None,
                        "code": behaviour.code,
                    }
                ).encode()
            else:
                payload = json.dumps(
                    {
                        "error": {
                            "message": behaviour.message,
                            "type": "Error",
                            "param": None,
                            "code": behaviour.code,
                        }
                    }
                ).encode()
            extra: dict[str, str] = {}
            if behaviour.retry_after is not None:
                extra["Retry-After"] = f"{behaviour.retry_after:g}"
            if behaviour.retry_after_ms is not None:
                extra["retry-after-ms"] = str(behaviour.retry_after_ms)
            await _send(writer, behaviour.code, payload, extra_headers=extra)
            return True
        if isinstance(behaviour, Reset):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if isinstance(behaviour, Silent):
            await asyncio.sleep(3600)
            return False
        if isinstance(behaviour, Drip):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: 100000000\r\n\r\n")  # fmt: skip
            try:
                while True:
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(behaviour.every)
            except (ConnectionError, RuntimeError):
                return False
        if isinstance(behaviour, Flood):
            kind = b"text/event-stream" if behaviour.event_stream else b"text/plain"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: " + kind
            writer.write(head + b"\r\nContent-Length: %d\r\n\r\n" % behaviour.size)
            piece = (b"data: " if behaviour.event_stream else b"") + b"x" * (1 << 20)
            sent = 0
            try:
                while sent < behaviour.size:
                    chunk = piece[: behaviour.size - sent]
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
                    piece = b"x" * (1 << 20)
            except (ConnectionError, RuntimeError):
                pass
            return False
        if isinstance(behaviour, HeadersThenStall):
            await _sse_headers(writer)
            await asyncio.sleep(3600)
            return False
        if isinstance(behaviour, Truncate):
            payload = json.dumps(_completion_body(self.model, "x" * 200)).encode()
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + payload[: len(payload) // 2])
            await writer.drain()
            writer.close()
            return False
        if isinstance(behaviour, Ok) and not streaming:
            payload = json.dumps(
                _completion_body(self.model, behaviour.content, behaviour.finish_reason)
            ).encode()
            await _send(writer, 200, payload)
            return True
        await _sse_headers(writer)
        if isinstance(behaviour, Ok):
            pieces = _split(behaviour.content, behaviour.chunks)
            for index, piece in enumerate(pieces):
                if behaviour.chunk_delay:
                    await asyncio.sleep(behaviour.chunk_delay)
                finish = behaviour.finish_reason if index == len(pieces) - 1 else None
                await _sse(writer, _chunk(self.model, piece, finish))
            await _sse(writer, _usage_chunk(self.model, 100, len(pieces)))
            await _sse_done(writer)
            return False
        if isinstance(behaviour, StallMidStream):
            for _ in range(behaviour.chunks):
                await _sse(writer, _chunk(self.model, "part ", None))
            await asyncio.sleep(3600)
            return False
        if isinstance(behaviour, MalformedStream):
            await _sse_raw(writer, "data: {not json at all\n\n")
            await _sse_done(writer)
            return False
        if isinstance(behaviour, InBandError):
            await _sse(writer, _chunk(self.model, "partial ", None))
            await _sse(
                writer,
                {"error": {"message": behaviour.message, "type": "Error", "code": behaviour.code}},
            )
            await _sse_done(writer)
            return False
        if isinstance(behaviour, EndWithoutFinish):
            await _sse(writer, _chunk(self.model, "partial ", None))
            await _sse_done(writer)
            return False
        raise TypeError(f"unknown behaviour {behaviour!r}")


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, parts)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _completion_body(model: str, content: str, finish: str = "stop") -> Any:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    }


def _chunk(model: str, text: str, finish: str | None) -> Any:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def _usage_chunk(model: str, prompt: int, completion: int) -> Any:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


async def _send(
    writer: asyncio.StreamWriter,
    code: int,
    payload: bytes,
    content_type: str = "application/json",
    extra_headers: dict[str, str] | None = None,
) -> None:
    lines = [
        f"HTTP/1.1 {code} X",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(payload)}",
    ]
    lines += [f"{name}: {value}" for name, value in (extra_headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    await writer.drain()


async def _sse_headers(writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()


async def _sse_raw(writer: asyncio.StreamWriter, text: str) -> None:
    writer.write(text.encode())
    await writer.drain()


async def _sse(writer: asyncio.StreamWriter, payload: Any) -> None:
    await _sse_raw(writer, f"data: {json.dumps(payload)}\n\n")


async def _sse_done(writer: asyncio.StreamWriter) -> None:
    await _sse_raw(writer, "data: [DONE]\n\n")
    writer.close()


def closed_port() -> int:
    """A loopback port with nothing listening: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Blackhole:
    """A loopback port whose accept queue is full: new connections are never established."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                filler.connect(("127.0.0.1", self.port))
            self.fillers.append(filler)
        time.sleep(0.05)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        for sock in [*self.fillers, self.listener]:
            sock.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
