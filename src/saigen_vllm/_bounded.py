"""Every response read within bounds: a cap on the bytes of a body and, for an event stream, on
the bytes between two line breaks. A server (or something that is not vLLM at that address)
cannot make the client buffer without end: a 1 GB /metrics or a stream line that never ends
raises :class:`~saigen_vllm._transport.ResponseTooLarge` instead.

Installed as an httpx response hook, so it applies whatever transport carries the request
(direct or through a proxy). Imported only when the first client is made."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from ._redact import redact_url
from ._transport import ResponseTooLarge

BODY_CAP = 16 * 1024 * 1024
"""A JSON answer, /metrics, /v1/models: vLLM's are kilobytes; 16 MiB is far beyond any."""
STREAM_CAP = 256 * 1024 * 1024
"""A whole streamed generation: a 32 k-token reply is under 10 MB of events."""
LINE_CAP = 1024 * 1024
"""One server-sent event line: vLLM's are a few hundred bytes."""


class BoundedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, url: httpx.URL, *, streaming: bool) -> None:
        self._inner = inner
        self._url = url
        self._cap = STREAM_CAP if streaming else BODY_CAP
        self._line_cap = LINE_CAP if streaming else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        since_newline = 0
        async for chunk in self._inner:
            total += len(chunk)
            if total > self._cap:
                raise ResponseTooLarge(
                    f"a body over {self._cap // (1024 * 1024)} MiB from {self._shown}"
                )
            if self._line_cap is not None:
                last = chunk.rfind(b"\n")
                since_newline = since_newline + len(chunk) if last < 0 else len(chunk) - last - 1
                if since_newline > self._line_cap:
                    raise ResponseTooLarge(
                        f"a stream line over {self._line_cap // 1024} KiB from {self._shown}"
                    )
            yield chunk

    @property
    def _shown(self) -> str:
        """Only when it is refused: redacting every response's URL would tax each request."""
        return redact_url(str(self._url))

    async def aclose(self) -> None:
        await self._inner.aclose()


async def bound_response(response: httpx.Response) -> None:
    """The httpx ``response`` event hook: bound the body about to be read."""
    streaming = response.headers.get("content-type", "").startswith("text/event-stream")
    inner = response.stream
    assert isinstance(inner, httpx.AsyncByteStream)
    response.stream = BoundedStream(inner, response.request.url, streaming=streaming)
