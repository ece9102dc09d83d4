"""Idempotency keys: the first answer to a write is kept 24 hours per (account, endpoint, key).

A key is reserved before the write runs, so two requests with one key never both run: the
second one sees the reservation and is told to wait (409), or gets the first one's answer
once it is stored. A write that fails releases its key, so it can be retried with the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.errors import IdempotencyConflict, IdempotencyInProgress
from mailgate.security.secrets_box import SecretBox
from mailgate.store.models import IdempotencyRecord, utcnow

__all__ = ["Reservation", "StoredResponse", "fingerprint", "release", "reserve", "store"]

RETENTION: Final = timedelta(hours=24)
_PENDING: Final = 0  # the status code of a reservation whose answer is not stored yet


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes


@dataclass(frozen=True)
class Reservation:
    """A key this request holds: its write may run."""

    record_id: int


def fingerprint(method: str, path: str, body: bytes, box: SecretBox) -> str:
    """What tells two requests apart. Keyed: a body may carry a password in clear."""
    return box.digest(method.upper().encode(), path.encode(), body)


async def reserve(
    *, session: AsyncSession, account_id: int, endpoint: str, key: str, request_hash: str
) -> Reservation | StoredResponse:
    """Hold the key for this request, or the stored answer to the request that held it first.

    Raises IdempotencyConflict when the key was used with another body, and
    IdempotencyInProgress while the first request with it has not been answered."""
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - RETENTION)
    )
    record = IdempotencyRecord(
        account_id=account_id,
        endpoint=endpoint,
        key=key,
        request_hash=request_hash,
        status_code=_PENDING,
        response_body=b"",
    )
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:  # the key is taken: by an answered request, or one still running
        await session.rollback()
    else:
        return Reservation(record.id)
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.account_id == account_id,
        IdempotencyRecord.endpoint == endpoint,
        IdempotencyRecord.key == key,
    )
    holder = (await session.execute(query)).scalar_one_or_none()
    await session.commit()
    if holder is None:  # released (its write failed) between our insert and this read
        raise IdempotencyInProgress()
    if holder.request_hash != request_hash:
        raise IdempotencyConflict()
    if holder.status_code == _PENDING:
        raise IdempotencyInProgress()
    return StoredResponse(holder.status_code, holder.response_body)


async def store(
    *, session: AsyncSession, reservation: Reservation, response: StoredResponse
) -> None:
    """Keep the answer for replays."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == reservation.record_id)
        .values(status_code=response.status_code, response_body=response.body)
    )
    await session.commit()


async def release(*, session: AsyncSession, reservation: Reservation) -> None:
    """Give the key back: the write failed before anything was kept."""
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id == reservation.record_id)
    )
    await session.commit()
