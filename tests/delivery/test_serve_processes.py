"""`mailgate serve` with several processes on one data directory: every process answers the
API, exactly one delivers (it holds the delivery lock), and every message arrives once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mailgate.delivery.coordination import (
    MAX_DATAGRAM,
    DelivererHandoff,
    DeliveryLock,
    Handed,
    WakeListener,
    WakeSender,
    handoff_datagrams,
    read_handoff,
)
from mailgate.delivery.personalize import Engagement
from mailgate.delivery.queue import DeliveryJob, Lease
from serve_process import serving
from smtp_servers import SmtpServer


def test_one_process_holds_the_delivery_lock(tmp_path: Path) -> None:
    first, second = DeliveryLock(tmp_path), DeliveryLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()  # flock: a second open file is refused, in any process
    first.release()
    assert second.acquire()
    second.release()


class _Heard:
    """A receiver that notes what the listener passed on."""

    def __init__(self) -> None:
        self.woken = asyncio.Event()
        self.handed: list[Handed] = []
        self.got_handoff = asyncio.Event()

    def wake(self) -> None:
        self.woken.set()

    def adopt_leased(self, handed: Handed) -> None:
        self.handed.append(handed)
        self.got_handoff.set()


async def test_a_wake_datagram_reaches_the_deliverer(tmp_path: Path) -> None:
    heard = _Heard()
    listener = WakeListener(tmp_path, heard)
    assert await listener.start()
    sender = WakeSender(tmp_path)
    try:
        sender()
        await asyncio.wait_for(heard.woken.wait(), 5)
    finally:
        sender.close()
        listener.close()
    assert not (tmp_path / "delivery.sock").exists()
    orphan = WakeSender(tmp_path)
    orphan()  # nobody listening: dropped without an error
    orphan.close()


def _job(
    message_id: int, until: datetime, raw: bytes = b"Subject: hi\r\n\r\nhello\r\n"
) -> DeliveryJob:
    return DeliveryJob(
        message_id=message_id,
        account_id=1,
        explicit_provider_id=None if message_id % 2 else 7,
        envelope_from="s@example.com",
        recipients=("r@example.com", f"r{message_id}@bücher.example"),
        settled=("rejected",),
        raw=raw,
        smtputf8=bool(message_id % 2),
        attempts=message_id,
        expires_at=until + timedelta(days=3),
        lease_expires_at=until,
        engagement=Engagement(track_opens=True, list_unsubscribe=bool(message_id % 2)),
    )


def test_a_handoff_carries_each_message_whole_and_a_large_one_by_id() -> None:
    until = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    small = [_job(i, until, raw=bytes([i]) * 1500) for i in range(1, 60)]
    large = _job(60, until, raw=b"x" * MAX_DATAGRAM)
    datagrams = handoff_datagrams("host:1:aa", [*small, large])
    assert len(datagrams) > 1  # 60 messages of 1.5 KB do not fit in one
    assert all(len(datagram) <= MAX_DATAGRAM for datagram, _ in datagrams)
    handed = [read_handoff(datagram) for datagram, _ in datagrams]
    assert {(h.owner, h.until) for h in handed} == {("host:1:aa", until)}
    assert [job for h in handed for job in h.jobs] == small
    assert [i for h in handed for i in h.message_ids] == [60]
    assert [job for _, carried in datagrams for job in carried] == [*small, large]
    whole, _ = datagrams[0]
    for broken in (whole[:-1], whole + b"x", b"J" + whole[5:], b"J\0\0\0\2{}"):
        with pytest.raises(ValueError):
            read_handoff(broken)


async def test_a_handoff_names_the_deliverer_from_the_lock_file_and_sends_the_mail(
    tmp_path: Path,
) -> None:
    heard = _Heard()
    sender = WakeSender(tmp_path)
    handoff = DelivererHandoff(tmp_path, sender, seconds=30, limit=7)
    assert handoff.lease() is None  # no deliverer has ever run here
    lock = DeliveryLock(tmp_path)
    assert lock.acquire()
    lock.announce("host:1:aa")
    listener = WakeListener(tmp_path, heard)
    assert await listener.start()
    try:
        assert handoff.lease() == Lease("host:1:aa", 30, 7)
        until = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        jobs = [_job(i, until) for i in (11, 12, 13)]
        assert handoff.adopt(jobs) == ()
        await asyncio.wait_for(heard.got_handoff.wait(), 5)
        assert heard.handed == [Handed("host:1:aa", until, jobs, [])]
        assert (tmp_path / "delivery.sock").stat().st_mode & 0o777 == 0o600
        lock.announce("host:2:bb")  # a new deliverer took over: read again
        assert handoff.lease() == Lease("host:2:bb", 30, 7)
    finally:
        listener.close()
        lock.release()
    assert handoff.lease() is None  # released: the file names nobody
    jobs = [_job(14, datetime.now(UTC))]
    lock.acquire()
    lock.announce("host:3:cc")  # ... a deliverer that is not listening
    try:
        assert handoff.adopt(jobs) == jobs  # returned, to be given back
        assert handoff.lease() is None  # and nothing leased for a moment
    finally:
        lock.release()
        sender.close()


def test_two_processes_accept_and_one_delivers_everything_once(
    tmp_path: Path, smtp_plain: SmtpServer
) -> None:
    count = 120
    with serving(tmp_path, MAILGATE_PROCESSES="2", MAILGATE_QUEUE_POLL_SECONDS="0.2") as server:
        auth = server.auth
        server.add_sink_provider(smtp_plain.host, smtp_plain.port)

        async def send_all() -> list[str]:
            # Many connections, so that both processes take some of them.
            limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as client:
                answers = await asyncio.gather(
                    *(
                        client.post(
                            "/api/v1/messages",
                            headers=auth,
                            json={
                                "from": {"email": "sender@example.com"},
                                "to": [{"email": f"r{i}@example.net"}],
                                "subject": f"message {i}",
                                "text": "hello",
                            },
                        )
                        for i in range(count)
                    )
                )
            assert [a.status_code for a in answers] == [201] * count
            return [a.json()["data"]["id"] for a in answers]

        ids = asyncio.run(send_all())
        deadline = time.monotonic() + 60
        while len(smtp_plain.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a duplicate would arrive now
        subjects = Counter(str(m.parsed["Subject"]) for m in list(smtp_plain.messages))
        assert subjects == Counter(f"message {i}" for i in range(count))
        statuses = Counter(
            httpx.get(f"{server.base_url}/api/v1/messages/{i}", headers=auth).json()["data"][
                "status"
            ]
            for i in ids
        )
        assert statuses == {"delivered": count}
        assert not DeliveryLock(tmp_path).acquire()  # held by the delivering process
    pids = {
        line.split("[")[1].split("]")[0]
        for line in server.output
        if "Started server process" in line
    }
    assert len(pids) == 2, "".join(server.output)


def delivery_children(parent: int) -> list[int]:
    """Pids of the ``mailgate worker`` processes ``parent`` started (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"worker" in command:
            found.append(int(entry.name))
    return found


def test_serve_delivers_from_its_own_process_and_restarts_it(
    tmp_path: Path, smtp_plain: SmtpServer
) -> None:
    """On SQLite with two CPUs (or MAILGATE_DELIVERY_PROCESS=true) the API process only
    accepts; a `mailgate worker` it started delivers, and is started again if it dies."""
    with serving(
        tmp_path, MAILGATE_DELIVERY_PROCESS="true", MAILGATE_QUEUE_POLL_SECONDS="5"
    ) as server:
        auth = server.auth
        server.add_sink_provider(smtp_plain.host, smtp_plain.port)

        def send_and_wait(subject: str) -> None:
            answer = httpx.post(
                f"{server.base_url}/api/v1/messages",
                headers=auth,
                json={
                    "from": {"email": "sender@example.com"},
                    "to": [{"email": "r@example.net"}],
                    "subject": subject,
                    "text": "hello",
                },
            )
            assert answer.status_code == 201, answer.text
            deadline = time.monotonic() + 4  # under the poll interval: the nudge did it
            while subject not in {str(m.parsed["Subject"]) for m in smtp_plain.messages}:
                assert time.monotonic() < deadline, "".join(server.output)
                time.sleep(0.05)

        [child] = delivery_children(server.process.pid)
        send_and_wait("first")
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not (children := delivery_children(server.process.pid)) or children == [child]:
            assert time.monotonic() < deadline, "".join(server.output)
            time.sleep(0.1)
        time.sleep(1)  # the new one takes the lock and listens
        send_and_wait("second")
        assert not DeliveryLock(tmp_path).acquire()  # the worker holds it, not the API
    assert delivery_children(server.process.pid) == []
    assert "starting it again" in "".join(server.output)
