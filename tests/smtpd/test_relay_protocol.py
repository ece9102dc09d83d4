"""The relay as an SMTP server: sequences, limits, sizes, 8-bit and UTF-8 mail, and commit
failures answered 451. Clients relay from a listed network (IP authentication)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from relay_support import RelayWorld, relay_world
from sqlalchemy import text

from mailgate.services.suppressions import SuppressionReason, suppress
from smtp_servers import SmtpServer

LIMITS = {
    "smtp_max_recipients": 3,
    "smtp_max_connections_per_ip": 2,
    "smtp_max_messages_per_connection": 2,
    "message_max_bytes": 20_000,
}


@pytest.fixture
async def world(
    fresh_database_url: str, tmp_path: Path, smtp_plain: SmtpServer
) -> AsyncIterator[RelayWorld]:
    async with relay_world(fresh_database_url, tmp_path, smtp_plain, **LIMITS) as world:
        await world.list_network("127.0.0.1")
        yield world


def client(world: RelayWorld) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)


def raw(subject: str = "Hi", body: str = "Body.\r\n", to: str = "user@example.net") -> bytes:
    return (f"From: app@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}").encode()


async def command(smtp: aiosmtplib.SMTP, *words: str) -> aiosmtplib.SMTPResponse:
    return await smtp.execute_command(*(w.encode() for w in words))


async def test_ehlo_announces_what_the_relay_takes(world: RelayWorld) -> None:
    async with client(world) as smtp:
        await smtp.ehlo()
        assert smtp.supports_extension("size")
        assert smtp.esmtp_extensions["size"] == str(world.settings.message_max_bytes)
        for extension in ("8bitmime", "smtputf8", "starttls", "pipelining"):
            assert smtp.supports_extension(extension), extension


async def test_bad_sequences_get_the_right_codes(world: RelayWorld) -> None:
    async with client(world) as smtp:
        assert (await command(smtp, "MAIL", "FROM:<app@example.com>")).code == 503  # no EHLO
        await smtp.ehlo()
        assert (await command(smtp, "RCPT", "TO:<user@example.net>")).code == 503  # no MAIL
        assert (await command(smtp, "DATA")).code == 503  # no MAIL
        assert (await command(smtp, "MAIL", "FROM:<app@example.com>")).code == 250
        assert (await command(smtp, "MAIL", "FROM:<app@example.com>")).code == 503  # nested
        assert (await command(smtp, "DATA")).code == 503  # no RCPT
        assert (await command(smtp, "RCPT", "TO:<not an address>")).code in (501, 553)
        assert (await command(smtp, "RCPT", "TO:<user@>")).code == 553
        assert (await command(smtp, "BDAT", "10")).code == 500  # not offered
        assert (await command(smtp, "RSET")).code == 250
        assert (await command(smtp, "RCPT", "TO:<user@example.net>")).code == 503  # reset
    assert await world.messages() == []


async def test_too_many_recipients(world: RelayWorld) -> None:
    async with client(world) as smtp:
        await smtp.ehlo()
        await smtp.mail("app@example.com")
        codes = [(await smtp.rcpt(f"r{i}@example.net"))[0] for i in range(3)]
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await smtp.rcpt("r3@example.net")
        assert codes == [250, 250, 250]
        assert refused.value.code == 452
        response = await smtp.data(raw())
        assert response.code == 250
    [message] = await world.messages()
    assert len(await world.recipients(message.id)) == 3


async def test_size_limit_announced_and_enforced(world: RelayWorld) -> None:
    async with client(world) as smtp:
        await smtp.ehlo()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as declared:
            await smtp.mail("app@example.com", options=["SIZE=50000"])
        assert declared.value.code == 552
        await smtp.mail("app@example.com")  # no SIZE declared: counted while it arrives
        await smtp.rcpt("u@example.net")
        with pytest.raises(aiosmtplib.SMTPDataError) as sent:
            await smtp.data(raw(body=("x" * 998 + "\r\n") * 30))
        assert sent.value.code == 552
    assert await world.messages() == []


async def test_messages_per_connection_and_connections_per_ip(world: RelayWorld) -> None:
    async with client(world) as smtp:
        for i in range(2):
            await smtp.sendmail("app@example.com", ["u@example.net"], raw(f"n{i}"))
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail("app@example.com")
        assert refused.value.code == 421
    first, second = client(world), client(world)
    await first.connect()
    await second.connect()
    try:
        with pytest.raises(aiosmtplib.SMTPConnectError) as busy:
            await client(world).connect()
        assert "Too many connections" in str(busy.value)
    finally:
        first.close()
        second.close()
    await asyncio.sleep(0.1)  # the relay sees both close
    async with client(world) as smtp:  # room again
        assert (await smtp.noop()).code == 250
    assert len(await world.messages()) == 2


async def test_8bit_and_utf8_mail_is_delivered_intact(world: RelayWorld) -> None:
    message = EmailMessage()
    message["From"] = "Zoë <zoë@exämple.com>"
    message["To"] = "Jürgen <jürgen@example.net>"
    message["Subject"] = "Grüße, 東京"
    message.set_content("Ünïcödé body: 東京 ✓\n", cte="8bit")
    data = message.as_bytes(policy=message.policy.clone(utf8=True, linesep="\r\n"))
    assert b"Gr\xc3\xbc\xc3\x9fe" in data  # raw 8-bit UTF-8 headers and body

    def send(smtp: smtplib.SMTP) -> dict[str, tuple[int, bytes]]:
        smtp.ehlo("app.test")
        assert smtp.has_extn("smtputf8")
        return smtp.sendmail(
            "zoë@exämple.com",
            ["jürgen@example.net"],
            data,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )

    assert await world.smtplib(send) == {}
    await world.delivered(1)
    [arrived] = world.upstream.messages
    assert arrived.mail_from == "zoë@exämple.com"
    assert arrived.rcpt_tos == ["jürgen@example.net"]
    body = arrived.data.split(b"\r\n\r\n", 1)[1]
    assert body == data.split(b"\r\n\r\n", 1)[1]  # byte for byte
    assert arrived.parsed["Subject"] == "Grüße, 東京"
    assert arrived.parsed.get_content().rstrip() == "Ünïcödé body: 東京 ✓"


async def test_non_ascii_address_needs_smtputf8(world: RelayWorld) -> None:
    async with client(world) as smtp:
        await smtp.ehlo()
        response = await command(smtp, "MAIL", "FROM:<zoë@exämple.com>")
        assert response.code == 553
        assert (await command(smtp, "MAIL", "FROM:<app@example.com>")).code == 250
        assert (await command(smtp, "RCPT", "TO:<jürgen@example.net>")).code == 553


async def test_a_message_that_cannot_be_sent_safely_is_refused(world: RelayWorld) -> None:
    async with client(world) as smtp:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.sendmail("app@example.com", ["u@example.net"], b"no headers at all\r\n")
    assert refused.value.code == 550
    assert refused.value.message.startswith("5.6.0 The message was refused:")
    assert await world.messages() == []


async def test_a_failed_commit_is_451_and_nothing_is_half_written(world: RelayWorld) -> None:
    """A real commit failure: the database itself refuses the row (a trigger)."""
    if world.node.database.engine.dialect.name == "sqlite":
        ddl = [
            "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.subject = 'refuse me' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        ]
    else:
        ddl = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.subject = 'refuse me' THEN RAISE EXCEPTION 'refused by test'; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON messages "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
    async with world.node.database.session() as session:
        for statement in ddl:
            await session.execute(text(statement))
        await session.commit()
    async with client(world) as smtp:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.sendmail("app@example.com", ["u@example.net"], raw("refuse me"))
        assert refused.value.code == 451
        await smtp.rset()
        await smtp.sendmail("app@example.com", ["u@example.net"], raw("fine"))  # still serving
    [message] = await world.messages()
    assert message.subject == "fine"
    async with world.node.database.session() as session:
        orphans = await session.execute(
            text("SELECT count(*) FROM message_contents WHERE message_id <> :id"),
            {"id": message.id},
        )
        assert orphans.scalar_one() == 0


async def test_relayed_mail_takes_the_http_path_suppressions_included(world: RelayWorld) -> None:
    async with world.node.database.session() as session:
        await suppress(
            session=session,
            account_id=world.account_id,
            address="blocked@example.net",
            reason=SuppressionReason.HARD_BOUNCE,
        )
        await session.commit()
    async with client(world) as smtp:
        errors, _ = await smtp.sendmail(
            "app@example.com", ["blocked@example.net", "fine@example.net"], raw()
        )
    assert errors == {}  # accepted: the suppressed one is refused at send time, as over HTTP
    await world.delivered(1)
    [message] = await world.messages()
    statuses = {r.address: r.status for r in await world.recipients(message.id)}
    assert statuses == {"blocked@example.net": "rejected", "fine@example.net": "delivered"}
    assert world.upstream.messages[0].rcpt_tos == ["fine@example.net"]
    kinds = [(e.type, e.recipient) for e in await world.events(message.id)]
    assert ("reject", "blocked@example.net") in kinds
