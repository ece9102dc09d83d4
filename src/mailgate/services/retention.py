"""Retention: the MIME of finished mail is removed after ``archive_retention_days``.

Only messages in a final status lose their body (mail still scheduled, queued, deferred or
being sent never does); the message row, its recipients and events stay, marked
``purged_at``. Work goes in batches, each one transaction, so a purge of a large backlog
never holds the database for long. The delivering process runs :class:`RetentionPurger`;
``mailgate purge`` runs one pass by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Final

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.config import Settings
from mailgate.domain import MessageStatus
from mailgate.store.db import Database
from mailgate.store.models import Message, MessageContent, utcnow

__all__ = ["FINAL_STATUSES", "RetentionPurger", "purge_batch", "purge_expired"]

log = structlog.get_logger(__name__)

FINAL_STATUSES: Final = (
    MessageStatus.DELIVERED.value,
    MessageStatus.PARTIAL.value,
    MessageStatus.BOUNCED.value,
    MessageStatus.FAILED.value,
    MessageStatus.REJECTED.value,
    MessageStatus.CANCELLED.value,
)


async def purge_batch(
    *, session: AsyncSession, older_than: datetime, batch_size: int, now: datetime | None = None
) -> int:
    """Purge up to ``batch_size`` finished messages created before ``older_than``; commits.
    Returns how many were purged."""
    stamp = now or utcnow()
    candidates = (
        select(Message.id)
        .where(
            Message.purged_at.is_(None),
            Message.created_at < older_than,
            Message.status.in_(FINAL_STATUSES),
        )
        .order_by(Message.created_at)
        .limit(batch_size)
    )
    ids = list((await session.execute(candidates)).scalars())
    if not ids:
        return 0
    # The status is checked again as the rows are marked: only what is final loses its body.
    marked = await session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.purged_at.is_(None),
            Message.status.in_(FINAL_STATUSES),
        )
        .values(purged_at=stamp)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    purged = list(marked.scalars())
    if purged:
        await session.execute(delete(MessageContent).where(MessageContent.message_id.in_(purged)))
    await session.commit()
    return len(purged)


async def purge_expired(
    *,
    database: Database,
    retention_days: int,
    batch_size: int,
    now: datetime | None = None,
) -> int:
    """Purge every finished message older than the retention period, batch by batch.
    ``retention_days`` 0 keeps everything. Returns how many were purged."""
    if retention_days <= 0:
        return 0
    stamp = now or utcnow()
    older_than = stamp - timedelta(days=retention_days)
    total = 0
    while True:
        async with database.session() as session:
            done = await purge_batch(
                session=session, older_than=older_than, batch_size=batch_size, now=stamp
            )
        total += done
        if done < batch_size:
            return total
        await asyncio.sleep(0)  # let the process's other work in between batches


class RetentionPurger:
    """Purges on a timer (``archive_purge_interval_seconds``) until stopped."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                purged = await purge_expired(
                    database=self.database,
                    retention_days=self.settings.archive_retention_days,
                    batch_size=self.settings.archive_purge_batch_size,
                )
            except Exception as exc:  # a failed pass is retried at the next tick
                log.warning("purging old message bodies failed", error=repr(exc)[:300])
            else:
                if purged:
                    log.info("purged old message bodies", messages=purged)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=self.settings.archive_purge_interval_seconds
                )
