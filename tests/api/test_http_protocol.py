"""`mailgate serve`'s HTTP protocol sends each response in one write: status line, headers
and body arrive together, on a kept-alive connection and on one the client closes."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit

from conftest import LiveServer


def _first_read(sock: socket.socket) -> bytes:
    ready, _, _ = select.select([sock], [], [], 10)
    assert ready, "no answer"
    return sock.recv(65536)  # what one segment brought, without waiting for more


def test_a_response_arrives_in_one_piece(live_server: LiveServer) -> None:
    address = urlsplit(live_server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        for _ in range(3):  # kept alive: one response after another
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: mailgate\r\n\r\n")
            data = _first_read(sock)
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            assert len(body) == length and b'"status":"ok"' in body.replace(b" ", b"")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: mailgate\r\nConnection: close\r\n\r\n")
        data = _first_read(sock)
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"}")
        while more := sock.recv(65536):  # then the server closes
            data += more
        assert data.count(b"HTTP/1.1 200 ") == 1
