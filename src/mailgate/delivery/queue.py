"""The queue is the messages table: claim due rows with a lease, release them when done.

On PostgreSQL the claim takes rows ``FOR UPDATE SKIP LOCKED``, so any number of workers on
any number of hosts share one queue without sending a message twice at the same time; on
SQLite the single writer lock makes the same statement atomic. A worker that dies keeps its
rows only until the lease expires: then another claims them (at-least-once delivery).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.store.models import QUEUED_STATUSES, Message

__all__ = ["claim_due"]


async def claim_due(
    session: AsyncSession, *, worker_id: str, limit: int, lease_seconds: float, now: datetime
) -> list[int]:
    """Lease up to ``limit`` due messages to ``worker_id``; their ids, oldest due first."""
    due = (
        select(Message.id)
        .where(
            Message.status.in_(QUEUED_STATUSES),
            Message.due_at <= now,
            or_(Message.lease_expires_at.is_(None), Message.lease_expires_at < now),
        )
        .order_by(Message.due_at, Message.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = await session.execute(
        update(Message)
        .where(Message.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Message.attempts + 1,
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(claimed.scalars())
    await session.commit()
    return ids
