"""Addresses and domains an account must not send to.

An entry is a lower-cased address (``kind`` email) or a domain (``kind`` domain, which
suppresses every address at it, not its subdomains). The send-time check is
:func:`find_suppressed`; bounces, complaints and unsubscribes add entries with
:func:`suppress` in their own transaction; the APIs manage the list with the rest.

Adding is ``INSERT ... ON CONFLICT DO NOTHING`` on (account, value): two requests adding the
same value at once both succeed, one of them reporting that it was there already.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mailgate.errors import Conflict, Invalid, Issue, NotFound
from mailgate.i18n import N_
from mailgate.store.bulk import dialect_insert
from mailgate.store.models import Suppression, table_of, utcnow
from mailgate.validation import check_email, check_hostname, check_no_control_chars

__all__ = [
    "MAX_DETAIL",
    "PUBLIC_ID_PREFIX",
    "Added",
    "SuppressionFilter",
    "SuppressionKind",
    "SuppressionPage",
    "SuppressionReason",
    "add_suppressed",
    "add_suppression",
    "already_suppressed",
    "count_suppressions",
    "entries_covering",
    "find_suppressed",
    "find_suppression",
    "get_suppression",
    "list_suppressions",
    "parse_value",
    "public_id",
    "remove_suppression",
    "suppress",
    "suppressed_among",
]

PUBLIC_ID_PREFIX: Final = "sup_"
MAX_DETAIL: Final = 1000


class SuppressionReason(StrEnum):
    MANUAL = "manual"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"


class SuppressionKind(StrEnum):
    EMAIL = "email"
    DOMAIN = "domain"


@dataclass(frozen=True)
class Added:
    row: Suppression
    created: bool  # False: the value was suppressed already (the entry is the existing one)


@dataclass(frozen=True)
class SuppressionPage:
    items: list[Suppression]
    has_more: bool


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def public_id(row: Suppression) -> str:
    return f"{PUBLIC_ID_PREFIX}{row.id}"


def parse_value(
    value: str, field: str = "value", expected: SuppressionKind | None = None
) -> tuple[str, SuppressionKind]:
    """An address (normalised, lower-cased) or a domain (``example.com``, also written
    ``@example.com``); IP literals are neither. ``expected``: only that kind will do."""
    text = value.strip()
    is_email = "@" in text.lstrip("@")
    if expected is SuppressionKind.EMAIL and not is_email:
        raise Invalid.field(field, N_("Must be a valid email address."), "invalid_email")
    if expected is SuppressionKind.DOMAIN and is_email:
        raise Invalid.field(field, N_("Must be a domain, not an email address."))
    try:
        if is_email:
            return check_email(text).lower(), SuppressionKind.EMAIL
        domain = text.removeprefix("@")
        if _is_ip(domain):
            raise ValueError(N_("Must be an email address or a domain."))
        name = check_hostname(domain)
    except ValueError as exc:
        raise Invalid.field(field, N_("Must be an email address or a domain.")) from exc
    return name, SuppressionKind.DOMAIN


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _check_detail(detail: str | None, field: str = "detail") -> str | None:
    if detail is None or not detail.strip():
        return None
    issues: list[Issue] = []
    try:
        check_no_control_chars(detail)
    except ValueError as exc:
        issues.append(Issue(field, str(exc)))
    if len(detail) > MAX_DETAIL:
        issues.append(
            Issue(
                field,
                N_("Must be at most {max_length} characters long."),
                "too_long",
                {"max_length": MAX_DETAIL},
            )
        )
    if issues:
        raise Invalid(issues)
    return detail.strip()


async def find_suppressed(
    *, session: AsyncSession, account_id: int, addresses: Iterable[str]
) -> set[str]:
    """The given addresses (as given) that are suppressed, by address or by domain."""
    return await session.run_sync(suppressed_among, account_id, addresses)


_TABLE: Final = table_of(Suppression)
# Built once: it runs in every accepting transaction, and building a statement (then its cache
# key) cost more than running it.
_SUPPRESSED: Final = select(_TABLE.c.value).where(
    _TABLE.c.account_id == bindparam("account_id"),
    _TABLE.c.value.in_(bindparam("keys", expanding=True)),
)


def suppressed_among(session: Session, account_id: int, addresses: Iterable[str]) -> set[str]:
    """:func:`find_suppressed` inside a synchronous transaction (:meth:`Database.write`)."""
    wanted = {address.lower(): address for address in addresses}
    if not wanted:
        return set()
    keys = set(wanted) | {_domain(a) for a in wanted}
    found = set(
        session.execute(_SUPPRESSED, {"account_id": account_id, "keys": list(keys)}).scalars()
    )
    return {
        original
        for lowered, original in wanted.items()
        if lowered in found or _domain(lowered) in found
    }


def _insert_ignoring_duplicates(session: Session, values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT (account_id, value) DO NOTHING`` in the session's dialect."""
    return (
        dialect_insert(session, table_of(Suppression))
        .values(**values)
        .on_conflict_do_nothing(index_elements=["account_id", "value"])
    )


def _insert(
    session: Session,
    account_id: int,
    value: str,
    kind: SuppressionKind,
    reason: SuppressionReason,
    detail: str | None,
) -> bool:
    values = {
        "account_id": account_id,
        "value": value,
        "kind": kind.value,
        "reason": reason.value,
        "detail": detail,
        "created_at": utcnow(),
    }
    result = session.execute(_insert_ignoring_duplicates(session, values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def suppress(
    *,
    session: AsyncSession,
    account_id: int,
    address: str,
    reason: SuppressionReason,
    detail: str | None = None,
) -> None:
    """Add an address (no commit: it joins the caller's transaction). Already there: kept,
    with its first reason."""
    await session.run_sync(add_suppressed, account_id, address, reason, detail)


def add_suppressed(
    session: Session,
    account_id: int,
    address: str,
    reason: SuppressionReason,
    detail: str | None = None,
) -> None:
    """:func:`suppress` inside a synchronous transaction (:meth:`Database.write`)."""
    value = address.lower()
    kind = SuppressionKind.EMAIL if "@" in value else SuppressionKind.DOMAIN
    _insert(session, account_id, value, kind, reason, detail)


async def add_suppression(
    *,
    session: AsyncSession,
    account_id: int,
    value: str,
    reason: SuppressionReason = SuppressionReason.MANUAL,
    detail: str | None = None,
    field: str = "value",
    expected: SuppressionKind | None = None,
) -> Added:
    """Suppress an address or a domain (``expected``: only that kind) and commit. Already
    suppressed: the existing entry, unchanged, with ``created`` False."""
    normalized, kind = parse_value(value, field, expected)
    text = _check_detail(detail)
    created = await session.run_sync(_insert, account_id, normalized, kind, reason, text)
    await session.commit()
    row = await _by_value(session, account_id, normalized)
    if row is None:  # removed by another request between our insert and this read
        raise NotFound(N_("{value} is not suppressed."), value=normalized)
    return Added(row=row, created=created)


def already_suppressed(row: Suppression) -> Conflict:
    return Conflict(
        N_("{value} is suppressed already (reason: {reason})."),
        value=row.value,
        reason=row.reason,
    )


async def _by_value(session: AsyncSession, account_id: int, value: str) -> Suppression | None:
    query = select(Suppression).where(
        Suppression.account_id == account_id, Suppression.value == value
    )
    return (await session.execute(query)).scalar_one_or_none()


async def find_suppression(
    *, session: AsyncSession, account_id: int, value: str, field: str = "value"
) -> Suppression:
    """The entry for an address or a domain (normalised first: ``A@Example.COM`` finds
    ``a@example.com``). An address suppressed only through its domain is not found here."""
    normalized, _ = parse_value(value, field)
    row = await _by_value(session, account_id, normalized)
    if row is None:
        raise NotFound(N_("{value} is not suppressed."), value=normalized)
    return row


async def get_suppression(*, session: AsyncSession, account_id: int, ref: str) -> Suppression:
    """An entry by its public id (``sup_12``) or by its value."""
    text = ref.strip()
    number = text.removeprefix(PUBLIC_ID_PREFIX)
    if text.startswith(PUBLIC_ID_PREFIX) and number.isdigit() and len(number) <= 18:
        query = select(Suppression).where(
            Suppression.account_id == account_id, Suppression.id == int(number)
        )
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise NotFound(N_("No suppression with id {id}."), id=text[:64])
        return row
    return await find_suppression(session=session, account_id=account_id, value=text, field="id")


async def remove_suppression(*, session: AsyncSession, row: Suppression) -> None:
    """Send to the address (or domain) again. Gone already: nothing to do."""
    await session.execute(delete(Suppression).where(Suppression.id == row.id))
    await session.commit()


@dataclass(frozen=True)
class SuppressionFilter:
    """``contains`` matches anywhere in the value, case-insensitively; ``since`` and
    ``until`` bound when the entry was added."""

    kind: SuppressionKind | None = None
    reasons: tuple[SuppressionReason, ...] = ()
    contains: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _conditions(account_id: int, filters: SuppressionFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Suppression.account_id == account_id]
    if filters.kind is not None:
        where.append(Suppression.kind == filters.kind.value)
    if filters.reasons:
        where.append(Suppression.reason.in_([r.value for r in filters.reasons]))
    if filters.contains and filters.contains.strip():
        text = filters.contains.strip().lower()
        where.append(func.lower(Suppression.value).contains(text, autoescape=True))
    if filters.since is not None:
        where.append(Suppression.created_at >= filters.since)
    if filters.until is not None:
        where.append(Suppression.created_at < filters.until)
    return where


async def list_suppressions(
    *,
    session: AsyncSession,
    account_id: int,
    limit: int,
    filters: SuppressionFilter = SuppressionFilter(),
    cursor_id: int | None = None,
    ascending: bool = False,
) -> SuppressionPage:
    """Entries newest first (or oldest first), ``cursor_id`` being the last id of the page
    before."""
    query = select(Suppression).where(*_conditions(account_id, filters))
    if cursor_id is not None:
        query = query.where(Suppression.id > cursor_id if ascending else Suppression.id < cursor_id)
    order = Suppression.id.asc() if ascending else Suppression.id.desc()
    rows = list((await session.execute(query.order_by(order).limit(limit + 1))).scalars())
    return SuppressionPage(items=rows[:limit], has_more=len(rows) > limit)


async def count_suppressions(
    *, session: AsyncSession, account_id: int, filters: SuppressionFilter = SuppressionFilter()
) -> int:
    query = select(func.count(Suppression.id)).where(*_conditions(account_id, filters))
    return int((await session.execute(query)).scalar_one())


async def entries_covering(
    *, session: AsyncSession, account_id: int, value: str, field: str = "value"
) -> list[Suppression]:
    """The entries that stop mail to ``value``: its own and, for an address, its domain's."""
    normalized, kind = parse_value(value, field)
    keys = [normalized]
    if kind is SuppressionKind.EMAIL:
        keys.append(_domain(normalized))
    query = (
        select(Suppression)
        .where(Suppression.account_id == account_id, Suppression.value.in_(keys))
        .order_by(Suppression.id)
    )
    return list((await session.execute(query)).scalars())
