"""Open and click tracking and unsubscribe: the account's defaults, each message's choice,
and what a recipient's tracking or unsubscribe link records.

Links carry signed tokens (:mod:`mailgate.services.tracking_tokens`); a token that does not
verify, or names a message or recipient that is not there (any more), finds no target and
records nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mailgate.delivery.personalize import Engagement
from mailgate.domain import EventType
from mailgate.errors import NotFound
from mailgate.services.suppressions import SuppressionReason, suppress
from mailgate.services.tracking_tokens import TokenKind, TrackingSigner
from mailgate.store.models import Account, Event, Message, MessageRecipient, table_of, utcnow

__all__ = [
    "AccountTracking",
    "Target",
    "TrackingChoice",
    "Visitor",
    "account_defaults",
    "find_target",
    "get_account_tracking",
    "looks_automated",
    "record_hit",
    "resolve",
    "unsubscribe",
    "update_account_tracking",
]

USER_AGENT_MAX: Final = 512
# Scanners, link checkers and prefetchers announce themselves; their hits are recorded but
# flagged (events.automated), so stats can leave them out.
_AUTOMATED: Final = re.compile(
    r"bot\b|bot/|crawler|spider|preview|scanner|prefetch|headless|curl/|wget/|python-|"
    r"go-http-client|java/|okhttp|barracuda|mimecast|proofpoint|safelinks|"
    r"googleimageproxy|yahoomailproxy",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TrackingChoice:
    """What a send request says; None: the account's default."""

    track_opens: bool | None = None
    track_clicks: bool | None = None
    transactional: bool | None = None


@dataclass(frozen=True)
class AccountTracking:
    """An account's defaults for mail that does not say."""

    track_opens: bool = False
    track_clicks: bool = False
    transactional: bool = False


def resolve(choice: TrackingChoice, defaults: AccountTracking) -> Engagement:
    """The message's engagement: its own choice where it made one, else the account's."""

    def pick(own: bool | None, default: bool) -> bool:
        return default if own is None else own

    transactional = pick(choice.transactional, defaults.transactional)
    return Engagement(
        track_opens=pick(choice.track_opens, defaults.track_opens),
        track_clicks=pick(choice.track_clicks, defaults.track_clicks),
        list_unsubscribe=not transactional,
    )


def _of(account: Account) -> AccountTracking:
    return AccountTracking(account.track_opens, account.track_clicks, account.transactional)


_ACCOUNTS: Final = table_of(Account)
# Built once: it runs in every accepting transaction (see suppressions.suppressed_among).
_DEFAULTS: Final = select(
    _ACCOUNTS.c.id, _ACCOUNTS.c.track_opens, _ACCOUNTS.c.track_clicks, _ACCOUNTS.c.transactional
).where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))


def account_defaults(session: Session, account_ids: Iterable[int]) -> dict[int, AccountTracking]:
    """Each account's defaults (one query for all)."""
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    rows = session.execute(_DEFAULTS, {"ids": wanted})
    found = {row.id: AccountTracking(*row[1:]) for row in rows}
    return {account_id: found.get(account_id, AccountTracking()) for account_id in wanted}


async def _account(session: AsyncSession, account_id: int) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound()
    return account


async def get_account_tracking(*, session: AsyncSession, account_id: int) -> AccountTracking:
    return _of(await _account(session, account_id))


async def update_account_tracking(
    *,
    session: AsyncSession,
    account_id: int,
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
    transactional: bool | None = None,
) -> AccountTracking:
    """Change the given defaults (None: keep); mail accepted before keeps what it had."""
    account = await _account(session, account_id)
    if track_opens is not None:
        account.track_opens = track_opens
    if track_clicks is not None:
        account.track_clicks = track_clicks
    if transactional is not None:
        account.transactional = transactional
    await session.commit()
    return _of(account)


@dataclass(frozen=True)
class Visitor:
    """Who followed a link, as far as the request tells."""

    user_agent: str | None
    client_ip: str | None
    automated: bool


def looks_automated(user_agent: str | None) -> bool:
    return not user_agent or _AUTOMATED.search(user_agent) is not None


@dataclass(frozen=True)
class Target:
    """The message and recipient a verified token names; ``url`` for clicks."""

    account_id: int
    message_id: int
    recipient: str
    url: str | None


async def find_target(
    *, session: AsyncSession, signer: TrackingSigner, token: str, kind: TokenKind
) -> Target | None:
    """The token's message and recipient, or None (forged, altered, or since deleted)."""
    read = signer.read(token, kind)
    if read is None:
        return None
    recipients = await session.execute(
        select(Message.account_id, MessageRecipient.address)
        .join(MessageRecipient, MessageRecipient.message_id == Message.id)
        .where(Message.id == read.message_id)
    )
    for account_id, address in recipients:
        if signer.recipient_digest(address, read.key_index) == read.recipient_digest:
            return Target(account_id, read.message_id, address, read.url)
    return None


def _event(target: Target, kind: EventType, visitor: Visitor, detail: str | None) -> Event:
    return Event(
        account_id=target.account_id,
        message_id=target.message_id,
        type=kind.value,
        recipient=target.recipient,
        detail=detail,
        user_agent=(visitor.user_agent or None) and visitor.user_agent[:USER_AGENT_MAX],
        client_ip=visitor.client_ip,
        url=target.url,
        automated=visitor.automated,
        created_at=utcnow(),
    )


async def record_hit(
    *, session: AsyncSession, target: Target, visitor: Visitor, kind: EventType
) -> None:
    """An ``open`` or a ``click``: every hit is an event (``automated`` tells the bots)."""
    session.add(_event(target, kind, visitor, None))
    await session.commit()


async def unsubscribe(*, session: AsyncSession, target: Target, visitor: Visitor, how: str) -> bool:
    """Suppress the recipient for the account (reason unsubscribe) and record one
    ``unsubscribe`` event. Idempotent: False when this link had been used already."""
    done = (
        await session.execute(
            select(Event.id).where(
                Event.message_id == target.message_id,
                Event.type == EventType.UNSUBSCRIBE.value,
                Event.recipient == target.recipient,
            )
        )
    ).first()
    if done is not None:
        return False
    await suppress(
        session=session,
        account_id=target.account_id,
        address=target.recipient,
        reason=SuppressionReason.UNSUBSCRIBE,
        detail=how,
    )
    session.add(_event(target, EventType.UNSUBSCRIBE, visitor, how))
    try:
        await session.commit()
    except IntegrityError:  # a concurrent request suppressed the address first: it is done
        await session.rollback()
        return False
    return True
