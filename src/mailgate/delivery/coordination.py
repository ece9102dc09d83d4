"""Several processes on one data directory share the delivery.

One process delivers: the one holding the lock file ``<data dir>/delivery.lock`` (released by
the kernel when its process ends, so the process that replaces it takes over), which names
its worker in that file. It claims from the queue (retries, scheduled mail, mail nobody else
took) and listens on ``<data dir>/delivery.sock`` for datagrams from the others:

- a nudge (``!``): mail was left in the table, look now;
- a handoff: mail committed already leased to its worker (by the id the lock file gives),
  with the message ids, so it loads them and sends, without a claim: the write lock is not
  taken again for mail that has just been written (:class:`DelivererHandoff`).

A serving process with a worker of its own (``MAILGATE_PROCESSES`` > 1) hands its mail to
that worker in memory instead, and gives back mail for providers with quotas, so quotas are
counted in one place. When a datagram cannot be sent (no deliverer yet, a path too long for
a socket) a nudge waits for the next poll and a handoff's leases are given back at once;
nothing is lost either way: the mail is in the table."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Final, Protocol

from mailgate.delivery.queue import DeliveryJob, Lease

__all__ = ["DelivererHandoff", "DeliveryLock", "Receiver", "WakeListener", "WakeSender"]

LOCK_FILE: Final = "delivery.lock"
WAKE_SOCKET: Final = "delivery.sock"
NUDGE: Final = b"!"
HANDOFF: Final = b"L"  # then lines: the lease's owner, its end (ISO 8601), comma-separated ids
UNHEARD_REST: Final = 1.0  # seconds without handoffs after one could not be sent


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

    def announce(self, worker_id: str) -> None:
        """Name the worker that delivers, for the processes that hand it mail."""
        assert self._file is not None, "announce after acquire"
        os.ftruncate(self._file.fileno(), 0)
        os.write(self._file.fileno(), worker_id.encode())  # appended: at 0

    def release(self) -> None:
        if self._file is not None:
            os.ftruncate(self._file.fileno(), 0)  # nobody to hand mail to from now on
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class Receiver(Protocol):
    """The delivering worker, as the listener sees it."""

    def wake(self) -> None: ...

    def adopt_leased(self, owner: str, until: datetime, message_ids: Sequence[int]) -> None: ...


class _Wake(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not data.startswith(HANDOFF):
            self._receiver.wake()
            return
        try:
            _, owner, until, ids = data.decode("ascii").split("\n")
            handed = (owner, datetime.fromisoformat(until), [int(i) for i in ids.split(",")])
        except ValueError:  # not ours to read (only this host's processes can send): look
            self._receiver.wake()
            return
        self._receiver.adopt_leased(*handed)


class WakeListener:
    """The deliverer's end of ``<data dir>/delivery.sock``: a nudge calls ``receiver.wake``,
    a handoff ``receiver.adopt_leased``."""

    def __init__(self, data_dir: Path, receiver: Receiver) -> None:
        self.path = data_dir / WAKE_SOCKET
        self._receiver = receiver
        self._transport: asyncio.BaseTransport | None = None

    async def start(self) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a deliverer that died; we hold the lock now
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(os.fspath(self.path))  # bound here: uvloop takes no AF_UNIX local_addr
            sock.setblocking(False)
            self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Wake(self._receiver), sock=sock
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
            self._socket.sendto(NUDGE, self.path)

    def send(self, datagram: bytes) -> bool:
        """Whether ``datagram`` was queued for the deliverer."""
        try:
            self._socket.sendto(datagram, self.path)
        except OSError:  # nobody listening, or the deliverer's queue is full
            return False
        return True

    def close(self) -> None:
        self._socket.close()


class DelivererHandoff:
    """A serving process's :class:`~mailgate.delivery.queue.Handoff` to the worker that
    holds the delivery lock: mail is committed leased to the worker the lock file names,
    and its ids go to that worker in a datagram. Mail it could not send the ids of is
    returned (to have its leases given back), and for a moment no more is leased."""

    def __init__(self, data_dir: Path, sender: WakeSender, *, seconds: float, limit: int) -> None:
        self.lock_path = data_dir / LOCK_FILE
        self._sender = sender
        self._seconds = seconds
        self._limit = limit
        self._holder: tuple[tuple[int, int, int], str] | None = None  # (stat, worker id)
        self._resting_until = 0.0

    def lease(self) -> Lease | None:
        if time.monotonic() < self._resting_until:
            return None
        owner = self._deliverer()
        return Lease(owner, self._seconds, self._limit) if owner else None

    def adopt(self, jobs: Sequence[DeliveryJob]) -> Sequence[DeliveryJob]:
        if not jobs:
            return ()
        owner = self._deliverer()
        lines = (
            HANDOFF.decode(),
            owner or "",
            jobs[0].lease_expires_at.isoformat(),  # one group: one lease end
            ",".join(str(job.message_id) for job in jobs),
        )
        if owner and self._sender.send("\n".join(lines).encode("ascii")):
            return ()
        self._resting_until = time.monotonic() + UNHEARD_REST
        return jobs

    def _deliverer(self) -> str | None:
        """The worker id in the lock file, read again only when the file changed."""
        try:
            stat = os.stat(self.lock_path)
        except OSError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._holder is None or self._holder[0] != key:
            try:
                self._holder = (key, self.lock_path.read_text("ascii").strip())
            except (OSError, ValueError):
                return None
        return self._holder[1] or None
