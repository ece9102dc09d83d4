"""Retention on a real database: only finished mail past the period loses its MIME, in
batches; queued, deferred and scheduled mail never does; ``mailgate purge`` runs a pass."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from mailgate.config import Settings
from mailgate.domain import Mailbox, MessageDraft
from mailgate.services import accounts, messages
from mailgate.services.retention import FINAL_STATUSES, purge_expired
from mailgate.store.db import Database, migrate
from mailgate.store.models import Message, MessageContent, utcnow
from serve_process import MAILGATE, environment

STATUSES = [*FINAL_STATUSES, "queued", "deferred", "scheduled"]


async def _fill(database: Database, settings: Settings, days_old: float) -> dict[str, str]:
    """One message per status, created ``days_old`` days ago: public id -> status."""
    async with database.session() as session:
        account = await accounts.create_account(session=session, name="r", email="r@example.com")
        submissions = [
            messages.submission_from_draft(
                MessageDraft(
                    sender=Mailbox("app@example.com"),
                    to=(Mailbox(f"{status}@example.com"),),
                    subject=status,
                    text="body",
                ),
                settings=settings,
            )
            for status in STATUSES
        ]
        accepted = await messages.accept(
            database=database, account_id=account.id, submissions=submissions, settings=settings
        )
        made = {}
        for item, status in zip(accepted, STATUSES, strict=True):
            await session.execute(
                update(Message)
                .where(Message.id == item.message.id)
                .values(status=status, created_at=utcnow() - timedelta(days=days_old))
            )
            made[item.message.public_id] = status
        await session.commit()
        return made


async def _kept(database: Database) -> dict[str, bool]:
    """Public id -> whether its MIME is still stored (and ``purged_at`` agrees)."""
    async with database.session() as session:
        rows = await session.execute(
            select(Message.public_id, Message.purged_at, MessageContent.message_id).outerjoin(
                MessageContent, MessageContent.message_id == Message.id
            )
        )
        found = {}
        for public_id, purged_at, content in rows:
            assert (purged_at is None) == (content is not None), public_id
            found[public_id] = content is not None
        return found


async def test_old_finished_mail_loses_its_body_and_queued_mail_never(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=fresh_database_url, secret_key="k" * 44)
    database = Database(fresh_database_url)
    try:
        old = await _fill(database, settings, days_old=40)
        kept = await _kept(database)
        assert all(kept.values())

        # Within the period nothing goes; 0 days means "keep forever".
        assert await purge_expired(database=database, retention_days=60, batch_size=2) == 0
        assert await purge_expired(database=database, retention_days=0, batch_size=2) == 0
        purged = await purge_expired(database=database, retention_days=30, batch_size=2)
        assert purged == len(FINAL_STATUSES)  # in batches of two
        kept = await _kept(database)
        assert {old[p] for p, k in kept.items() if k} == {"queued", "deferred", "scheduled"}
        assert await purge_expired(database=database, retention_days=30, batch_size=2) == 0
    finally:
        await database.dispose()


def test_the_purge_command(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mailgate.db'}"
    migrate(url)
    settings = Settings(data_dir=tmp_path, database_url=url, secret_key="k" * 44)

    async def fill() -> None:
        database = Database(url)
        try:
            await _fill(database, settings, days_old=3)
        finally:
            await database.dispose()

    asyncio.run(fill())

    def purge(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MAILGATE, "purge"],
            env=environment(tmp_path, **env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    forever = purge(MAILGATE_ARCHIVE_RETENTION_DAYS="0")
    assert forever.returncode == 0 and "kept forever" in forever.stderr
    assert "bodies of 0 messages" in purge().stderr  # 30 days by default
    done = purge(MAILGATE_ARCHIVE_RETENTION_DAYS="2")
    assert done.returncode == 0, done.stderr
    assert f"bodies of {len(FINAL_STATUSES)} messages" in done.stderr
