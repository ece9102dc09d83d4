"""The archive: the MIME of accepted messages, as stored, until the retention period ends.

Bodies live in ``message_contents``; :mod:`mailgate.services.retention` removes them from
finished mail after ``archive_retention_days`` and marks the message ``purged_at``. A purged
message keeps its metadata and events; asking for its body is :class:`ContentPurged`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.errors import Gone
from mailgate.i18n import N_
from mailgate.services.messages import message_of
from mailgate.store.models import Message, MessageContent, MessageRecipient

__all__ = [
    "ArchiveFilter",
    "ArchivedMessage",
    "ContentPurged",
    "MimeSummary",
    "raw_message",
    "raw_of",
    "search_archive",
    "summarize",
]

HEADERS_END: Final = b"\r\n\r\n"


class ContentPurged(Gone):
    message = N_(
        "The content of message {id} was removed when its retention period ended; its "
        "status and events are kept."
    )


@dataclass(frozen=True)
class ArchiveFilter:
    since: datetime | None = None
    until: datetime | None = None
    recipient: str | None = None  # exactly, case-insensitively
    sender_contains: str | None = None
    envelope_from: str | None = None  # exactly, case-insensitively
    subject_contains: str | None = None


@dataclass(frozen=True)
class MimeSummary:
    headers: str
    attachments: list[str]  # file names ("" for an unnamed part)


@dataclass(frozen=True)
class ArchivedMessage:
    message: Message
    raw: bytes


async def raw_message(*, session: AsyncSession, account_id: int, public_id: str) -> ArchivedMessage:
    """A message and its MIME exactly as stored; ContentPurged once the retention ended."""
    message = await message_of(session, account_id, public_id)
    raw = await raw_of(session=session, message_id=message.id)
    if raw is None:
        raise ContentPurged(id=message.public_id)
    return ArchivedMessage(message=message, raw=raw)


async def search_archive(
    *,
    session: AsyncSession,
    account_id: int,
    filters: ArchiveFilter,
    limit: int,
    before_id: int | None = None,
) -> tuple[list[Message], bool]:
    """Messages whose body is still kept, newest first; ``before_id`` pages on. Returns the
    page and whether there is more."""
    query = select(Message).where(Message.account_id == account_id, Message.purged_at.is_(None))
    if before_id is not None:
        query = query.where(Message.id < before_id)
    if filters.since is not None:
        query = query.where(Message.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Message.created_at < filters.until)
    if filters.recipient:
        query = query.where(
            Message.id.in_(
                select(MessageRecipient.message_id).where(
                    func.lower(MessageRecipient.address) == filters.recipient.strip().lower()
                )
            )
        )
    if filters.sender_contains:
        query = query.where(
            func.lower(Message.from_header).contains(
                filters.sender_contains.strip().lower(), autoescape=True
            )
        )
    if filters.envelope_from:
        query = query.where(
            func.lower(Message.envelope_from) == filters.envelope_from.strip().lower()
        )
    if filters.subject_contains:
        query = query.where(
            func.lower(Message.subject).contains(
                filters.subject_contains.strip().lower(), autoescape=True
            )
        )
    rows = list(
        (await session.execute(query.order_by(Message.id.desc()).limit(limit + 1))).scalars()
    )
    return rows[:limit], len(rows) > limit


async def raw_of(*, session: AsyncSession, message_id: int) -> bytes | None:
    """One message's MIME (read one at a time: messages may be large)."""
    raw = await session.scalar(
        select(MessageContent.raw).where(MessageContent.message_id == message_id)
    )
    return None if raw is None else bytes(raw)


def summarize(raw: bytes) -> MimeSummary:
    """The header block as text, and the file names of the attachment parts."""
    end = raw.find(HEADERS_END)
    block = raw if end < 0 else raw[:end]
    headers = block.decode("utf-8", errors="replace")
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    names: list[str] = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if disposition == "attachment" or (disposition == "inline" and filename):
            names.append(filename or "")
    return MimeSummary(headers=headers, attachments=names)
