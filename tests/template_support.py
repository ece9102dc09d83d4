"""Helpers the template tests share: the MIME a message was stored with."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import LiveServer
from mailgate.store.models import Message, MessageContent


def stored_mime(server: LiveServer, public_id: str) -> EmailMessage:
    async def work(session: AsyncSession) -> bytes:
        query = (
            select(MessageContent.raw)
            .join(Message, Message.id == MessageContent.message_id)
            .where(Message.public_id == public_id)
        )
        return bytes((await session.execute(query)).scalar_one())

    raw = server.run(work)
    assert isinstance(raw, bytes)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str | None, str | None]:
    """Subject, HTML and text of a stored message."""
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    return (
        str(message["Subject"]),
        None if html is None else html.get_content(),
        None if text is None else text.get_content(),
    )
