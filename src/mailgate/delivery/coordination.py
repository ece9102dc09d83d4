"""Several ``mailgate serve`` processes on one data directory share the delivery.

Every process answers the API and delivers the mail it accepted itself (handed to its worker
in memory, already leased: no claim). One of them, the one holding the lock file
``<data dir>/delivery.lock`` (released by the kernel when its process ends, so the process
that replaces it takes over), also claims from the queue: retries, scheduled mail, mail the
others had no room for, and mail for providers with quotas, which the others give back so
that quotas are counted in one place. The others nudge it with a datagram on
``<data dir>/delivery.sock`` when they leave it work; when the datagram cannot be sent (no
deliverer yet, a path too long for a socket) the work waits for its next poll, and nothing
is lost either way: the mail is in the table."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

__all__ = ["DeliveryLock", "WakeListener", "WakeSender"]

LOCK_FILE: Final = "delivery.lock"
WAKE_SOCKET: Final = "delivery.sock"


class DeliveryLock:
    """An exclusive, non-blocking lock on ``<data dir>/delivery.lock`` for this process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class _Wake(asyncio.DatagramProtocol):
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._wake()


class WakeListener:
    """The deliverer's end: every datagram on ``<data dir>/delivery.sock`` calls ``wake``."""

    def __init__(self, data_dir: Path, wake: Callable[[], None]) -> None:
        self.path = data_dir / WAKE_SOCKET
        self._wake = wake
        self._transport: asyncio.BaseTransport | None = None

    async def start(self) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a deliverer that died; we hold the lock now
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(os.fspath(self.path))  # bound here: uvloop takes no AF_UNIX local_addr
            sock.setblocking(False)
            self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Wake(self._wake), sock=sock
            )
        except OSError:  # e.g. a path longer than a socket address allows: poll instead
            sock.close()
            return False
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class WakeSender:
    """The other processes' end: calling it nudges the deliverer, never blocking or failing
    (a nudge that cannot be sent is dropped: the deliverer polls anyway)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = os.fspath(data_dir / WAKE_SOCKET)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def __call__(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.sendto(b"!", self.path)

    def close(self) -> None:
        self._socket.close()
