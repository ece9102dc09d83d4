"""Addresses and domains an account must not send to."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.store.models import Suppression

__all__ = ["SuppressionReason", "find_suppressed", "suppress"]


class SuppressionReason(StrEnum):
    MANUAL = "manual"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


async def find_suppressed(
    *, session: AsyncSession, account_id: int, addresses: Iterable[str]
) -> set[str]:
    """The given addresses (as given) that are suppressed, by address or by domain."""
    wanted = {address.lower(): address for address in addresses}
    if not wanted:
        return set()
    keys = set(wanted) | {_domain(a) for a in wanted}
    query = select(Suppression.value).where(
        Suppression.account_id == account_id, Suppression.value.in_(keys)
    )
    found = set((await session.execute(query)).scalars())
    return {
        original
        for lowered, original in wanted.items()
        if lowered in found or _domain(lowered) in found
    }


async def suppress(
    *,
    session: AsyncSession,
    account_id: int,
    address: str,
    reason: SuppressionReason,
    detail: str | None = None,
) -> None:
    """Add an address (no commit: it joins the caller's transaction). Already there: kept."""
    value = address.lower()
    query = select(Suppression.id).where(
        Suppression.account_id == account_id, Suppression.value == value
    )
    if (await session.execute(query)).first() is not None:
        return
    kind = "email" if "@" in value else "domain"
    session.add(
        Suppression(
            account_id=account_id, value=value, kind=kind, reason=reason.value, detail=detail
        )
    )
