"""A running relay for tests: a node (database, worker, relay listener) on pytest's loop,
an account with a provider pointing at a real upstream aiosmtpd, and helpers."""

from __future__ import annotations

import asyncio
import secrets
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from conftest import free_port
from mailgate.config import Settings
from mailgate.domain import Security, SendingRateLimit
from mailgate.node import Node, running_node
from mailgate.services import accounts, ip_auth, providers, smtp_users
from mailgate.services.providers import ProviderChanges
from mailgate.services.smtp_users import SmtpUserChanges
from mailgate.store.models import QUEUED_STATUSES, Event, Message, MessageRecipient
from smtp_servers import SmtpServer

__all__ = ["PASSWORD", "USERNAME", "RelayWorld", "relay_world", "trusting"]

USERNAME = "app-mailer"
PASSWORD = "correct horse battery"
T = TypeVar("T")


def trusting() -> ssl.SSLContext:
    """A client context for the relay's self-signed certificate (as a smarthost's clients
    on a private network commonly run)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class RelayWorld:
    node: Node
    settings: Settings
    account_id: int
    upstream: SmtpServer

    @property
    def port(self) -> int:
        return self.settings.smtp_port

    @property
    def tls_port(self) -> int:
        assert self.settings.smtp_tls_port is not None
        return self.settings.smtp_tls_port

    async def add_user(
        self,
        username: str = USERNAME,
        password: str = PASSWORD,
        *,
        account_id: int | None = None,
        allowed_senders: list[str] | None = None,
        rate_limit: SendingRateLimit | None = None,
        enabled: bool = True,
    ) -> None:
        async with self.node.database.session() as session:
            await smtp_users.create_smtp_user(
                session=session,
                account_id=account_id or self.account_id,
                changes=SmtpUserChanges(
                    username=username,
                    password=password,
                    allowed_senders=allowed_senders or [],
                    rate_limit=rate_limit,
                    is_enabled=enabled,
                ),
            )

    async def list_network(self, network: str, account_id: int | None = None) -> None:
        async with self.node.database.session() as session:
            await ip_auth.add_network(
                session=session, account_id=account_id or self.account_id, network=network
            )

    async def new_account(self) -> int:
        async with self.node.database.session() as session:
            account = await accounts.create_account(
                session=session, name="other", email=f"{secrets.token_hex(4)}@example.com"
            )
            return account.id

    async def messages(self) -> list[Message]:
        async with self.node.database.session() as session:
            return list((await session.execute(select(Message).order_by(Message.id))).scalars())

    async def recipients(self, message_id: int) -> list[MessageRecipient]:
        async with self.node.database.session() as session:
            query = select(MessageRecipient).where(MessageRecipient.message_id == message_id)
            return list((await session.execute(query.order_by(MessageRecipient.id))).scalars())

    async def events(self, message_id: int) -> list[Event]:
        async with self.node.database.session() as session:
            query = select(Event).where(Event.message_id == message_id).order_by(Event.id)
            return list((await session.execute(query)).scalars())

    async def delivered(self, count: int) -> None:
        """Wait (up to 20 s) until the upstream holds ``count`` messages and the outcomes
        are recorded (no message is still queued)."""
        async with asyncio.timeout(20):
            while len(self.upstream.messages) < count:  # noqa: ASYNC110 - filled by another thread
                await asyncio.sleep(0.05)
            while any(m.status in QUEUED_STATUSES for m in await self.messages()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    async def smtplib(self, work: Callable[[smtplib.SMTP], T], *, tls: bool = False) -> T:
        """Run ``work`` with a blocking smtplib client, in a thread (the relay runs on this
        loop). ``tls``: connect to the implicit-TLS port."""

        def run() -> T:
            client: smtplib.SMTP
            if tls:
                client = smtplib.SMTP_SSL("127.0.0.1", self.tls_port, context=trusting())
            else:
                client = smtplib.SMTP("127.0.0.1", self.port)
            try:
                return work(client)
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPServerDisconnected, OSError):
                    client.close()

        return await asyncio.to_thread(run)


@asynccontextmanager
async def relay_world(
    url: str, data_dir: Path, upstream: SmtpServer, **overrides: Any
) -> AsyncIterator[RelayWorld]:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": url,
        "secret_key": secrets.token_urlsafe(32),
        "smtp_port": free_port(),
        "smtp_tls_port": free_port(),
        "smtp_hostname": "relay.test",
        "smtp_timeout": 5.0,
        "run_workers": True,
        "queue_poll_seconds": 0.2,
        "retry_schedule": [60],
    }
    values.update(overrides)
    settings = Settings(**values)
    async with running_node(settings, relay=True) as node:
        async with node.database.session() as session:
            account = await accounts.create_account(
                session=session, name="relay", email="owner@example.com"
            )
            await providers.create_provider(
                session=session,
                box=node.box,
                account_id=account.id,
                changes=ProviderChanges(
                    name="upstream",
                    host=upstream.host,
                    port=upstream.port,
                    security=Security.NONE,
                    percentage=100,
                ),
            )
        yield RelayWorld(node, settings, account.id, upstream)
