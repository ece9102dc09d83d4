"""`mailgate smtpd` killed with SIGKILL while clients are sending loses nothing it answered
250: every such message is in the queue, and is delivered once the relay runs again."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from conftest import free_port
from mailgate.domain import Security
from mailgate.security.secrets_box import SecretBox
from mailgate.services import accounts, ip_auth, providers
from mailgate.services.providers import ProviderChanges
from mailgate.store.db import Database
from mailgate.store.models import Message, MessageContent
from smtp_servers import _RecordingHandler, _serving

MAILGATE = str(Path(sys.executable).parent / "mailgate")
CLIENTS = 4
KILL_AFTER = 40  # 250s seen before the kill
SECRET = secrets.token_urlsafe(32)


class _SlowHandler(_RecordingHandler):
    """Takes its time, so delivery is still under way when the relay dies."""

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(smtp, session, envelope)


@contextmanager
def relay_process(url: str, data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env.update(
        {
            "MAILGATE_DATABASE_URL": url,
            "MAILGATE_DATA_DIR": str(data_dir),
            "MAILGATE_SECRET_KEY": SECRET,
            "MAILGATE_SMTP_PORT": str(port),
            "MAILGATE_SMTP_HOSTNAME": "relay.test",
            "MAILGATE_QUEUE_LEASE_SECONDS": "2",
            "MAILGATE_QUEUE_POLL_SECONDS": "0.2",
        }
    )
    process = subprocess.Popen(
        [MAILGATE, "smtpd"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # until it greets
            assert process.poll() is None and time.monotonic() < deadline, "smtpd did not start"
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as probe:
                    probe.noop()
                break
            except OSError:
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def send_until_stopped(port: int, client: int, accepted: list[str], stop: threading.Event) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            for n in range(10_000):
                if stop.is_set():
                    return
                subject = f"c{client}-m{n}"
                data = f"From: app@example.com\r\nTo: u@example.net\r\nSubject: {subject}\r\n\r\n."
                smtp.sendmail("app@example.com", ["u@example.net"], data.encode())
                accepted.append(subject)  # only once the relay said 250
    except (smtplib.SMTPException, OSError):
        return  # the relay died under us


async def messages(url: str) -> dict[str, tuple[str, bool]]:
    """subject -> (status, has MIME)"""
    database = Database(url)
    try:
        async with database.session() as session:
            query = select(Message.subject, Message.status, MessageContent.message_id).outerjoin(
                MessageContent, MessageContent.message_id == Message.id
            )
            rows = (await session.execute(query)).all()
            return {subject: (status, content is not None) for subject, status, content in rows}
    finally:
        await database.dispose()


async def test_sigkill_after_250_loses_nothing(fresh_database_url: str, tmp_path: Path) -> None:
    url = fresh_database_url
    with _serving(_SlowHandler) as sink:
        database = Database(url)
        try:
            async with database.session() as session:
                account = await accounts.create_account(
                    session=session, name="apps", email="apps@example.com"
                )
                await ip_auth.add_network(
                    session=session, account_id=account.id, network="127.0.0.1"
                )
            async with database.session() as session:
                await providers.create_provider(
                    session=session,
                    box=SecretBox([SECRET]),
                    account_id=account.id,
                    changes=ProviderChanges(
                        name="sink", host=sink.host, port=sink.port, security=Security.NONE
                    ),
                )
        finally:
            await database.dispose()
        port = free_port()
        accepted: list[str] = []
        stop = threading.Event()
        with relay_process(url, tmp_path, port) as doomed:
            threads = [
                threading.Thread(target=send_until_stopped, args=(port, i, accepted, stop))
                for i in range(CLIENTS)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(accepted) < KILL_AFTER:
                assert time.monotonic() < deadline, "the relay accepted too little"
                await asyncio.sleep(0.001)
            doomed.send_signal(signal.SIGKILL)
            acknowledged = list(accepted)  # every 250 the clients had seen by the kill
            doomed.wait(timeout=30)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        stored = await messages(url)
        missing = [s for s in acknowledged if s not in stored or not stored[s][1]]
        assert missing == [], "answered 250 but not committed"
        assert len(sink.messages) < len(stored), "it died with mail still to deliver"
        with relay_process(url, tmp_path, port):
            deadline = time.monotonic() + 90
            while True:
                stored = await messages(url)
                if all(stored[s][0] == "delivered" for s in acknowledged):
                    break
                assert time.monotonic() < deadline, "not delivered after the restart"
                await asyncio.sleep(0.2)
    arrived = {str(m.parsed["Subject"]) for m in sink.messages}
    assert set(acknowledged) <= arrived
