"""uvicorn's httptools protocol, sending each response in one system call.

uvicorn writes a response's status line and headers, then its body, each with its own
``transport.write``: on uvloop each is a ``send()`` at once, so every response costs two
system calls, two segments on the wire and two wake-ups of the client. Here what is written
during one turn of the event loop is joined and sent at the end of that turn (before the
loop waits for anything), so a response goes out whole, no later than before.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["PROTOCOL", "HttpProtocol"]

PROTOCOL: Final = "mailgate.api.http_protocol:HttpProtocol"  # for uvicorn's ``http``


class _JoinedWrites:
    """A transport whose writes wait for the end of the loop's turn, then go out as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written first, as a transport's close() would
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_JoinedWrites(transport, self.loop))  # type: ignore[arg-type]
