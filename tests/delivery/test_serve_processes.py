"""`mailgate serve` with several processes on one data directory: every process answers the
API, exactly one delivers (it holds the delivery lock), and every message arrives once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx

from mailgate.delivery.coordination import DeliveryLock, WakeListener, WakeSender
from serve_process import serving
from smtp_servers import SmtpServer


def test_one_process_holds_the_delivery_lock(tmp_path: Path) -> None:
    first, second = DeliveryLock(tmp_path), DeliveryLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()  # flock: a second open file is refused, in any process
    first.release()
    assert second.acquire()
    second.release()


async def test_a_wake_datagram_reaches_the_deliverer(tmp_path: Path) -> None:
    woken = asyncio.Event()
    listener = WakeListener(tmp_path, woken.set)
    assert await listener.start()
    sender = WakeSender(tmp_path)
    try:
        sender()
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        sender.close()
        listener.close()
    assert not (tmp_path / "delivery.sock").exists()
    orphan = WakeSender(tmp_path)
    orphan()  # nobody listening: dropped without an error
    orphan.close()


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
