"""Idempotency keys: the first answer to a write is kept 24 hours per (account, endpoint, key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.errors import IdempotencyConflict
from mailgate.security.secrets_box import SecretBox
from mailgate.store.models import IdempotencyRecord, utcnow

__all__ = ["StoredResponse", "fingerprint", "recall", "remember"]

RETENTION: Final = timedelta(hours=24)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes


def fingerprint(method: str, path: str, body: bytes, box: SecretBox) -> str:
    """What tells two requests apart. Keyed: a body may carry a password in clear."""
    return box.digest(method.upper().encode(), path.encode(), body)


async def recall(
    *, session: AsyncSession, account_id: int, endpoint: str, key: str, request_hash: str
) -> StoredResponse | None:
    """The stored answer for this key, None if unused; IdempotencyConflict if the body differs."""
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - RETENTION)
    )
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.account_id == account_id,
        IdempotencyRecord.endpoint == endpoint,
        IdempotencyRecord.key == key,
    )
    record = (await session.execute(query)).scalar_one_or_none()
    await session.commit()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyConflict()
    return StoredResponse(record.status_code, record.response_body)


async def remember(
    *,
    session: AsyncSession,
    account_id: int,
    endpoint: str,
    key: str,
    request_hash: str,
    response: StoredResponse,
) -> None:
    session.add(
        IdempotencyRecord(
            account_id=account_id,
            endpoint=endpoint,
            key=key,
            request_hash=request_hash,
            status_code=response.status_code,
            response_body=response.body,
        )
    )
    try:
        await session.commit()
    except IntegrityError:  # a concurrent twin stored first; its answer stands
        await session.rollback()
