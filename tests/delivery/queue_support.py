"""Shared set-up for delivery tests: a fresh database, an account, providers, messages."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailgate.config import Settings
from mailgate.delivery.worker import Worker
from mailgate.domain import Mailbox, MessageDraft, QuotaRange, QuotaWindow, Security
from mailgate.security.secrets_box import SecretBox
from mailgate.services import accounts, messages, providers
from mailgate.services.providers import ProviderChanges
from mailgate.store.db import Database
from mailgate.store.models import Event, Message, MessageRecipient, Provider

__all__ = ["Bench", "bench"]


@dataclass
class Bench:
    """One account on one database, with helpers to add providers and send mail."""

    database: Database
    settings: Settings
    box: SecretBox
    account_id: int

    async def provider(
        self,
        host: str,
        port: int,
        *,
        name: str = "upstream",
        percentage: int = 100,
        security: Security = Security.NONE,
        username: str | None = None,
        password: str | None = None,
        quotas: dict[QuotaWindow, QuotaRange | None] | None = None,
    ) -> int:
        async with self.database.session() as session:
            created = await providers.create_provider(
                session=session,
                box=self.box,
                account_id=self.account_id,
                changes=ProviderChanges(
                    name=name,
                    host=host,
                    port=port,
                    security=security,
                    username=username,
                    password=password,
                    percentage=percentage,
                    quotas=quotas or {},
                ),
            )
            return created.id

    async def send(
        self,
        count: int = 1,
        *,
        to: Sequence[str] = ("rcpt@example.com",),
        cc: Sequence[str] = (),
        bcc: Sequence[str] = (),
        subject: str = "Hello",
        provider_ref: str | None = None,
        **draft: Any,
    ) -> list[str]:
        submissions = [
            messages.submission_from_draft(
                MessageDraft(
                    sender=Mailbox("sender@example.com", "Sender"),
                    to=tuple(Mailbox(a) for a in to),
                    cc=tuple(Mailbox(a) for a in cc),
                    bcc=tuple(Mailbox(a) for a in bcc),
                    subject=subject if count == 1 else f"{subject} {i}",
                    text=draft.pop("text", "Body text"),
                    **draft,
                ),
                settings=self.settings,
                provider_ref=provider_ref,
            )
            for i in range(count)
        ]
        accepted = await messages.accept(
            database=self.database,
            account_id=self.account_id,
            submissions=submissions,
            settings=self.settings,
        )
        return [a.message.public_id for a in accepted]

    async def message(self, public_id: str) -> Message:
        async with self.database.session() as session:
            query = select(Message).where(Message.public_id == public_id)
            return (await session.execute(query)).scalar_one()

    async def recipients(self, public_id: str) -> dict[str, MessageRecipient]:
        async with self.database.session() as session:
            message = (
                await session.execute(select(Message).where(Message.public_id == public_id))
            ).scalar_one()
            rows = (
                await session.execute(
                    select(MessageRecipient).where(MessageRecipient.message_id == message.id)
                )
            ).scalars()
            return {row.address: row for row in rows}

    async def events(self, public_id: str) -> list[tuple[str, str | None]]:
        async with self.database.session() as session:
            message = (
                await session.execute(select(Message).where(Message.public_id == public_id))
            ).scalar_one()
            rows = (
                await session.execute(
                    select(Event).where(Event.message_id == message.id).order_by(Event.id)
                )
            ).scalars()
            return [(row.type, row.recipient) for row in rows]

    async def provider_row(self, provider_id: int) -> Provider:
        async with self.database.session() as session:
            found = await session.get(Provider, provider_id)
            assert found is not None
            return found

    def worker(self, *, helper: bool = False, **overrides: Any) -> Worker:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return Worker(self.database, self.box, settings, helper=helper)


@asynccontextmanager
async def bench(
    url: str, tmp_path: Path, ca_bundle: Path, **overrides: Any
) -> AsyncIterator[Bench]:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": url,
        "secret_key": secrets.token_urlsafe(32),
        "smtp_timeout": 3.0,
        "smtp_ca_bundle": ca_bundle,
        "retry_schedule": [60],
        "run_workers": False,
    }
    values.update(overrides)
    settings = Settings(**values)
    database = Database(url)
    try:
        async with database.session() as session:
            account = await accounts.create_account(
                session=session, name="delivery", email="owner@example.com"
            )
        yield Bench(database, settings, SecretBox(settings.secret_keys()), account.id)
    finally:
        await database.dispose()
