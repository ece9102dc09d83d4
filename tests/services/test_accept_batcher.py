"""Group commit of accepted mail: many callers share a transaction; a bad one fails alone."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate.config import Settings
from mailgate.domain import Mailbox, MessageDraft
from mailgate.errors import Invalid
from mailgate.services import accounts
from mailgate.services.messages import AcceptBatcher, Accepted, submission_from_draft
from mailgate.store.db import Database
from mailgate.store.models import Event, Message, MessageRecipient


async def test_concurrent_callers_share_commits_and_a_bad_one_fails_alone(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=fresh_database_url, secret_key=secrets.token_hex(16)
    )
    database = Database(fresh_database_url)
    try:
        async with database.session() as session:
            account = await accounts.create_account(
                session=session, name="batch", email="owner@example.com"
            )
        batcher = AcceptBatcher(database, settings, max_batch=8)

        def submission(i: int, provider_ref: str | None = None):  # type: ignore[no-untyped-def]
            draft = MessageDraft(
                sender=Mailbox("app@example.com"),
                to=(Mailbox(f"user{i}@example.com"),),
                subject=f"message {i}",
                text="hello",
            )
            return submission_from_draft(draft, settings=settings, provider_ref=provider_ref)

        async def caller(i: int) -> list[Accepted]:
            ref = "dprov_000000000000000000000000" if i == 13 else None
            return await batcher.accept(account.id, [submission(i, ref)])

        answers = await asyncio.gather(*(caller(i) for i in range(40)), return_exceptions=True)
        failures = [i for i, answer in enumerate(answers) if isinstance(answer, BaseException)]
        assert failures == [13]
        assert isinstance(answers[13], Invalid)
        assert answers[13].issues[0].field == "provider_id"
        ids = {a[0].message.public_id for a in answers if isinstance(a, list)}
        assert len(ids) == 39

        async with database.session() as session:
            messages = (await session.execute(select(func.count()).select_from(Message))).scalar()
            recipients = (
                await session.execute(select(func.count()).select_from(MessageRecipient))
            ).scalar()
            processed = (
                await session.execute(
                    select(func.count()).select_from(Event).where(Event.type == "processed")
                )
            ).scalar()
            stored = set((await session.execute(select(Message.public_id))).scalars())
        assert (messages, recipients, processed) == (39, 39, 39)
        assert stored == ids
    finally:
        await database.dispose()


@pytest.mark.parametrize("max_batch", [1, 500])
async def test_every_answer_matches_its_own_submission(
    fresh_database_url: str, tmp_path: Path, max_batch: int
) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=fresh_database_url, secret_key=secrets.token_hex(16)
    )
    database = Database(fresh_database_url)
    try:
        async with database.session() as session:
            account = await accounts.create_account(
                session=session, name="batch", email="owner@example.com"
            )
        batcher = AcceptBatcher(database, settings, max_batch=max_batch)

        async def caller(i: int) -> tuple[int, list[Accepted]]:
            draft = MessageDraft(
                sender=Mailbox("app@example.com"),
                to=(Mailbox(f"user{i}@example.com"),),
                subject=f"message {i}",
                text="hello",
            )
            sub = submission_from_draft(draft, settings=settings)
            return i, await batcher.accept(account.id, [sub])

        for i, answer in await asyncio.gather(*(caller(i) for i in range(25))):
            assert answer[0].message.subject == f"message {i}"
            assert answer[0].accepted == (f"user{i}@example.com",)
    finally:
        await database.dispose()
