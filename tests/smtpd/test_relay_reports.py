"""The loop closed: mail leaves with a VERP return path on the bounce domain, and the DSN or
complaint that comes back to that address over SMTP, without AUTH, is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest
from relay_support import RelayWorld, relay_world
from sqlalchemy import select

from mailgate.store.models import Suppression
from smtp_servers import SmtpServer

BOUNCE_DOMAIN = "bounces.example.com"


@pytest.fixture
async def world(
    fresh_database_url: str, tmp_path: Path, smtp_plain: SmtpServer
) -> AsyncIterator[RelayWorld]:
    async with relay_world(
        fresh_database_url, tmp_path, smtp_plain, bounce_domain=BOUNCE_DOMAIN
    ) as world:
        await world.list_network("127.0.0.1")
        yield world


def client(world: RelayWorld) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)


def dsn(return_path: str, recipient: str, status: str, action: str = "failed") -> bytes:
    """An RFC 3464 report as a receiving MTA would write it."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} mailbox unavailable\r\n"
        "--b1--\r\n"
    ).encode()


async def sent_one(world: RelayWorld, to: str) -> tuple[int, str]:
    """Relay one message, wait for it upstream; its row id and the return path it left with."""
    async with client(world) as smtp:
        await smtp.sendmail(
            "app@example.com",
            [to],
            f"From: app@example.com\r\nTo: {to}\r\nSubject: Hi\r\n\r\nBody\r\n".encode(),
        )
    await world.delivered(1)
    [message] = await world.messages()
    return message.id, world.upstream.messages[0].mail_from


async def test_mail_leaves_with_a_verp_return_path(world: RelayWorld) -> None:
    _, return_path = await sent_one(world, "user@example.net")
    local, _, domain = return_path.partition("@")
    assert domain == BOUNCE_DOMAIN
    assert local.startswith("bounces+")
    assert world.upstream.messages[0].parsed["From"] == "app@example.com"  # header untouched


async def test_a_hard_bounce_dsn_is_recorded_and_suppresses(world: RelayWorld) -> None:
    message_id, return_path = await sent_one(world, "gone@example.net")
    anonymous = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)
    async with anonymous:  # a remote MTA: no AUTH, and 127.0.0.1 being listed is irrelevant
        errors, reply = await anonymous.sendmail(
            "", [return_path], dsn(return_path, "gone@example.net", "5.1.1")
        )
    assert errors == {}
    assert "report received" in reply
    events = [(e.type, e.recipient, e.bounce_class) for e in await world.events(message_id)]
    assert ("bounce", "gone@example.net", "hard") in events
    [recipient] = await world.recipients(message_id)
    assert recipient.status == "bounced"
    async with world.node.database.session() as session:
        values = list((await session.execute(select(Suppression.value))).scalars())
    assert values == ["gone@example.net"]


async def test_a_soft_bounce_is_an_event_only(world: RelayWorld) -> None:
    message_id, return_path = await sent_one(world, "full@example.net")
    async with client(world) as smtp:
        await smtp.sendmail(
            "", [return_path], dsn(return_path, "full@example.net", "4.2.2", "delayed")
        )
    events = [(e.type, e.bounce_class) for e in await world.events(message_id)]
    assert ("bounce", "soft") in events
    [recipient] = await world.recipients(message_id)
    assert recipient.status == "delivered"


async def test_reports_need_no_auth_but_other_mail_does(
    fresh_database_url: str, tmp_path: Path, smtp_plain: SmtpServer
) -> None:
    async with relay_world(
        fresh_database_url, tmp_path, smtp_plain, bounce_domain=BOUNCE_DOMAIN
    ) as world:  # 127.0.0.1 is not listed here
        async with client(world) as smtp:
            await smtp.ehlo()
            assert (await smtp.mail("")).code == 250  # the null sender of a DSN
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await smtp.rcpt("someone@example.net")
            assert refused.value.code == 550
            assert (await smtp.rcpt(f"fbl@{BOUNCE_DOMAIN}")).code == 250
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as mixed:
                await smtp.rcpt("someone@example.net")
            assert mixed.value.code in (452, 550)
            response = await smtp.data(b"Subject: not a report\r\n\r\nhello\r\n")
            assert response.code == 250  # taken, recorded as nothing
        assert await world.messages() == []
