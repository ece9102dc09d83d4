"""Worker processes: two share one queue without sending twice; one killed with SIGKILL
mid-batch loses nothing (its messages are delivered after its leases expire)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from queue_support import Bench, bench
from sqlalchemy import func, select

from mailgate.store.models import Message
from smtp_servers import SmtpServer, _RecordingHandler, _serving

MAILGATE = str(Path(sys.executable).parent / "mailgate")


class _SlowHandler(_RecordingHandler):
    """Takes its time over each message, so a worker always has some in flight."""

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(smtp, session, envelope)


def message_ids(server: SmtpServer) -> Counter[str]:
    return Counter(str(m.parsed["Message-ID"]) for m in list(server.messages))


@contextmanager
def worker_process(b: Bench, tmp_path: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    environment.update(
        {
            "MAILGATE_DATABASE_URL": b.settings.effective_database_url,
            "MAILGATE_DATA_DIR": str(tmp_path),
            "MAILGATE_SECRET_KEY": b.settings.secret_keys()[0],
            "MAILGATE_QUEUE_POLL_SECONDS": "0.1",
            "MAILGATE_WORKER_CONCURRENCY": "10",
            "MAILGATE_QUEUE_BATCH_SIZE": "10",
            **env,
        }
    )
    process = subprocess.Popen(
        [MAILGATE, "worker"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()


async def count_delivered(b: Bench) -> int:
    async with b.database.session() as session:
        query = select(func.count()).select_from(Message).where(Message.status == "delivered")
        return int((await session.execute(query)).scalar_one())


async def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_two_worker_processes_share_the_queue_without_duplicates(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path
) -> None:
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("several worker processes share a queue on PostgreSQL (SKIP LOCKED)")
    total = 300
    with _serving(_SlowHandler) as sink:
        async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
            await b.provider(sink.host, sink.port)
            await b.send(total)
            with worker_process(b, tmp_path) as first, worker_process(b, tmp_path) as second:

                async def all_done() -> bool:
                    return await count_delivered(b) == total

                await wait_for(all_done, 120)
                assert first.poll() is None and second.poll() is None
    seen = message_ids(sink)
    assert len(seen) == total
    assert max(seen.values()) == 1, "a message was sent twice"


async def test_a_worker_killed_mid_batch_loses_nothing(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path
) -> None:
    total = 120
    with _serving(_SlowHandler) as sink:
        async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
            await b.provider(sink.host, sink.port)
            ids = await b.send(total)
            lease = {"MAILGATE_QUEUE_LEASE_SECONDS": "2"}
            with worker_process(b, tmp_path, **lease) as doomed:

                async def some_delivered() -> bool:
                    return len(sink.messages) >= 10

                await wait_for(some_delivered, 60)
                doomed.send_signal(signal.SIGKILL)
                doomed.wait(timeout=30)
            assert await count_delivered(b) < total  # it really died mid-way
            with worker_process(b, tmp_path, **lease):

                async def all_done() -> bool:
                    return await count_delivered(b) == total

                await wait_for(all_done, 120)
            statuses = {(await b.message(public_id)).status for public_id in ids}
    assert statuses == {"delivered"}
    seen = message_ids(sink)
    assert len(seen) == total  # every accepted message arrived (at least once)
