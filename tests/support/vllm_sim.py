"""A vLLM-shaped server for load tests and benchmarks: slots, a queue, a per-token pace.

It behaves as vLLM does where a client can tell: a streamed request gets its headers at once,
then nothing while it waits for one of ``slots`` (``--max-num-seqs``); an engine step every
``step`` seconds gives every running request one token (continuous batching: a step costs the same
for 1 or ``slots`` requests, as decode on a GPU is bound by memory bandwidth); ``/metrics`` has
vLLM's names (running, waiting, prompt and generation token counters); ``/health`` is 200;
``/version`` says 0.32.0. A request constrained to JSON (``structured_outputs`` or a JSON
``response_format``) is answered with a small saidata JSON document, spread over its tokens.

Faults of the engine, as vLLM shows them:
- :meth:`VLLMSim.freeze` - the engine core stopped (``kill -STOP``): /health still 200, metrics
  frozen, accepted requests get headers and then nothing. :meth:`thaw` resumes.
- :meth:`VLLMSim.kill_engine` - the engine died: /health answers 503, streams stop.

    with VLLMSim(slots=2, step=0.01) as sim:
        ...  # base_url = sim.base_url
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from tests.support.fault_server import (
    LoopbackHTTPServer,
    Received,
    _chunk,
    _models_body,
    _send,
    _sse,
    _sse_done,
    _sse_headers,
    _usage_chunk,
)

WORD = "pkg "
JSON_REPLY = '{"version":"0.3","metadata":{"name":"sim","description":"a simulated package"}}'


@dataclass
class _Request:
    prompt_tokens: int
    wanted: int
    tokens: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    generated: int = 0
    text: str | None = None
    """The whole reply when it is not WORD repeated (a JSON document)."""

    def piece(self, index: int) -> str:
        """Token ``index`` (0-based) of ``wanted``."""
        if self.text is None:
            return WORD
        size = -(-len(self.text) // self.wanted)
        return self.text[index * size : (index + 1) * size]


class VLLMSim(LoopbackHTTPServer):
    def __init__(
        self,
        *,
        slots: int = 8,
        step: float = 0.01,
        reply_tokens: int = 16,
        model: str = "sim-model",
        max_model_len: int = 32768,
    ) -> None:
        super().__init__(model=model, max_model_len=max_model_len)
        self.slots = slots
        self.step = step
        self.reply_tokens = reply_tokens
        self.waiting: list[_Request] = []
        self.running: list[_Request] = []
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.finished = 0
        self.peak_in_flight = 0
        self.frozen = False
        self.dead = False
        self._in_flight = 0

    # -- faults (thread-safe: flags read by the engine loop) -----------------------------------

    def freeze(self) -> None:
        self.frozen = True

    def thaw(self) -> None:
        self.frozen = False

    def kill_engine(self) -> None:
        self.dead = True

    # -- the engine ----------------------------------------------------------------------------

    async def _started(self) -> None:
        asyncio.get_running_loop().create_task(self._engine())

    async def _engine(self) -> None:
        while True:
            await asyncio.sleep(self.step)
            if self.frozen or self.dead:
                continue
            while self.waiting and len(self.running) < self.slots:
                request = self.waiting.pop(0)
                self.prompt_tokens_total += request.prompt_tokens
                self.running.append(request)
            for request in list(self.running):
                request.tokens.put_nowait(request.piece(request.generated))
                request.generated += 1
                self.generation_tokens_total += 1
                if request.generated >= request.wanted:
                    request.tokens.put_nowait(None)
                    self.running.remove(request)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _respond(self, request: Received, writer: asyncio.StreamWriter) -> bool:
        path = request.path
        if path == "/health":
            await _send(writer, 503 if self.dead else 200, b"")
        elif path == "/v1/models":
            await _send(
                writer, 200, json.dumps(_models_body(self.max_model_len, (self.model,))).encode()
            )
        elif path == "/metrics":
            await _send(writer, 200, self.metrics_text().encode(), "text/plain")
        elif path == "/version":
            await _send(writer, 200, b'{"version": "0.32.0"}')
        elif path == "/tokenize":
            count = len(request.body) // 4
            await _send(
                writer,
                200,
                json.dumps({"count": count, "max_model_len": self.max_model_len}).encode(),
            )
        elif path == "/v1/chat/completions":
            return await self._chat(request, writer)
        else:
            await _send(writer, 404, b'{"detail": "Not Found"}')
        return True

    def metrics_text(self) -> str:
        labels = f'{{engine="0",model_name="{self.model}"}}'
        return "".join(
            [
                "# TYPE vllm:num_requests_running gauge\n",
                f"vllm:num_requests_running{labels} {len(self.running)}.0\n",
                "# TYPE vllm:num_requests_waiting gauge\n",
                f"vllm:num_requests_waiting{labels} {len(self.waiting)}.0\n",
                "# TYPE vllm:prompt_tokens counter\n",
                f"vllm:prompt_tokens_total{labels} {self.prompt_tokens_total}.0\n",
                "# TYPE vllm:generation_tokens counter\n",
                f"vllm:generation_tokens_total{labels} {self.generation_tokens_total}.0\n",
            ]
        )

    async def _chat(self, received: Received, writer: asyncio.StreamWriter) -> bool:
        body = received.json() or {}
        wanted = min(int(body.get("max_tokens") or self.reply_tokens), self.reply_tokens)
        request = _Request(prompt_tokens=max(1, len(received.body) // 4), wanted=max(1, wanted))
        if _wants_json(body):
            request.text = JSON_REPLY
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            await _sse_headers(writer)
            self.waiting.append(request)
            while True:
                token = await request.tokens.get()
                if token is None:
                    break
                await _sse(writer, _chunk(self.model, token, None))
            await _sse(writer, _chunk(self.model, "", "stop"))
            await _sse(writer, _usage_chunk(self.model, request.prompt_tokens, request.generated))
            await _sse_done(writer)
            self.finished += 1
        finally:
            self._in_flight -= 1
            if request in self.waiting:
                self.waiting.remove(request)
            if request in self.running:
                self.running.remove(request)
        return False


def _wants_json(body: dict[str, object]) -> bool:
    structured = body.get("structured_outputs")
    if isinstance(structured, dict) and (structured.get("json") or structured.get("json_object")):
        return True
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    return kind in ("json_schema", "json_object")


def main() -> None:
    """``python -m tests.support.vllm_sim [--slots N] [--step S] [--reply-tokens K]``: serve on
    a free loopback port, print ``serving URL`` and run until killed (benchmarks use this to keep
    the server's work out of the measured process)."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--step", type=float, default=0.01)
    parser.add_argument("--reply-tokens", type=int, default=16)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with VLLMSim(slots=args.slots, step=args.step, reply_tokens=args.reply_tokens) as sim:
        print(f"serving {sim.base_url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
