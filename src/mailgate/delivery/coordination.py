"""Several processes on one data directory share the delivery.

One process delivers: the one holding the lock file ``<data dir>/delivery.lock`` (released by
the kernel when its process ends, so the process that replaces it takes over), which names
its worker in that file. It claims from the queue (retries, scheduled mail, mail nobody else
took) and listens on ``<data dir>/delivery.sock`` for datagrams from the others:

- a nudge (``!``): mail was left in the table, look now;
- a handoff: mail committed already leased to its worker (by the id the lock file gives),
  each message whole (what sending needs, its MIME included), so the worker sends it
  without a claim and without reading it back: the write lock is not taken again for mail
  that has just been written, nor the table read (:class:`DelivererHandoff`). A message
  too large for a datagram goes by its id, and the worker reads it from the table.

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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

import orjson
import structlog

from mailgate.delivery.personalize import Engagement
from mailgate.delivery.queue import DeliveryJob, Lease

__all__ = [
    "DelivererHandoff",
    "DeliveryLock",
    "Handed",
    "Receiver",
    "WakeListener",
    "WakeSender",
    "handoff_datagrams",
    "read_handoff",
]

log = structlog.get_logger(__name__)

LOCK_FILE: Final = "delivery.lock"
WAKE_SOCKET: Final = "delivery.sock"
NUDGE: Final = b"!"
HANDOFF: Final = b"J"  # then the header's length (4 bytes), the header (JSON), the MIME
UNHEARD_REST: Final = 1.0  # seconds without handoffs after one could not be sent
# Within every receive buffer a datagram may meet (libuv's 64 KiB, asyncio's 256 KiB): a
# longer one would arrive cut short.
MAX_DATAGRAM: Final = 60_000


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


@dataclass(frozen=True)
class Handed:
    """What a handoff datagram carries: mail leased to ``owner`` until ``until``."""

    owner: str
    until: datetime
    jobs: list[DeliveryJob]  # whole
    message_ids: list[int]  # to be read from the table


class Receiver(Protocol):
    """The delivering worker, as the listener sees it."""

    def wake(self) -> None: ...

    def adopt_leased(self, handed: Handed) -> None: ...


def handoff_datagrams(
    owner: str, jobs: Sequence[DeliveryJob]
) -> list[tuple[bytes, list[DeliveryJob]]]:
    """``jobs`` (one lease: one end) in as few datagrams as fit (see :data:`MAX_DATAGRAM`),
    each with the jobs it carries."""
    if not jobs:
        return []
    until = jobs[0].lease_expires_at.isoformat()
    datagrams: list[tuple[bytes, list[DeliveryJob]]] = []
    carried: list[DeliveryJob] = []
    whole: list[list[object]] = []
    by_id: list[int] = []
    raws: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal carried, whole, by_id, raws, size
        header = orjson.dumps({"owner": owner, "until": until, "jobs": whole, "ids": by_id})
        datagram = b"".join((HANDOFF, len(header).to_bytes(4, "big"), header, *raws))
        datagrams.append((datagram, carried))
        carried, whole, by_id, raws, size = [], [], [], [], 0

    for job in jobs:
        # its MIME, and a generous allowance for its header entry
        cost = len(job.raw) + 200 + len(job.envelope_from) + sum(map(len, job.recipients))
        whole_job = cost <= MAX_DATAGRAM // 2  # else the worker reads it from the table
        if not whole_job:
            cost = 16
        if size + cost > MAX_DATAGRAM - 200:
            flush()
        carried.append(job)
        if whole_job:
            whole.append(_fields(job))
            raws.append(job.raw)
        else:
            by_id.append(job.message_id)
        size += cost
    flush()
    return datagrams


def _fields(job: DeliveryJob) -> list[object]:
    return [
        job.message_id,
        job.account_id,
        job.explicit_provider_id,
        job.envelope_from,
        job.recipients,
        job.settled,
        job.smtputf8,
        job.attempts,
        job.expires_at.isoformat(),
        job.engagement.track_opens,
        job.engagement.track_clicks,
        job.engagement.list_unsubscribe,
        len(job.raw),
    ]


def read_handoff(data: bytes) -> Handed:
    """A datagram of :func:`handoff_datagrams`; ValueError when it is not one."""
    if not data.startswith(HANDOFF) or len(data) < 5:
        raise ValueError("not a handoff")
    end = 5 + int.from_bytes(data[1:5], "big")
    try:
        header = orjson.loads(data[5:end])
        until = datetime.fromisoformat(header["until"])
        jobs, at = _jobs(header["jobs"], data, end, until)
        handed = Handed(str(header["owner"]), until, jobs, [int(i) for i in header["ids"]])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a handoff: {exc!r}") from exc
    if at != len(data):
        raise ValueError("a handoff cut short, or with more than it says")
    return handed


def _jobs(
    entries: list[list[Any]], data: bytes, at: int, until: datetime
) -> tuple[list[DeliveryJob], int]:
    """The jobs of a handoff's header entries, their MIME read from ``data`` at ``at`` on;
    and where the last one ended."""
    jobs: list[DeliveryJob] = []
    for (
        message_id,
        account_id,
        provider_id,
        envelope_from,
        recipients,
        settled,
        smtputf8,
        attempts,
        expires_at,
        opens,
        clicks,
        unsubscribe,
        size,
    ) in entries:
        jobs.append(
            DeliveryJob(
                message_id=message_id,
                account_id=account_id,
                explicit_provider_id=provider_id,
                envelope_from=envelope_from,
                recipients=tuple(recipients),
                settled=tuple(settled),
                raw=data[at : at + size],
                smtputf8=smtputf8,
                attempts=attempts,
                expires_at=datetime.fromisoformat(expires_at),
                lease_expires_at=until,
                engagement=Engagement(opens, clicks, unsubscribe),
            )
        )
        at += size
    return jobs, at


class _Wake(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not data.startswith(HANDOFF):
            self._receiver.wake()
            return
        try:
            handed = read_handoff(data)
        except ValueError as exc:  # not ours to read (only the data directory's owner can
            log.warning("an unreadable handoff", error=repr(exc)[:200])  # send): look instead
            self._receiver.wake()
            return
        self._receiver.adopt_leased(handed)


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
            os.chmod(self.path, 0o600)  # a handoff names mail to send: the owner's alone
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
        if not owner:
            self._resting_until = time.monotonic() + UNHEARD_REST
            return jobs
        datagrams = handoff_datagrams(owner, jobs)
        for sent, (datagram, _) in enumerate(datagrams):
            if not self._sender.send(datagram):
                self._resting_until = time.monotonic() + UNHEARD_REST
                return [job for _, unheard in datagrams[sent:] for job in unheard]
        return ()

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
