"""Who may relay: SMTP users (AUTH PLAIN/LOGIN, only over TLS), listed networks, sender
rules and per-user rate limits. Real clients (smtplib, aiosmtplib) over real sockets."""

from __future__ import annotations

import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from relay_support import PASSWORD, USERNAME, RelayWorld, relay_world, trusting
from sqlalchemy import update

from mailgate.domain import SendingRateLimit
from mailgate.store.models import SmtpUser
from smtp_servers import SmtpServer


@pytest.fixture
async def world(
    fresh_database_url: str, tmp_path: Path, smtp_plain: SmtpServer
) -> AsyncIterator[RelayWorld]:
    async with relay_world(fresh_database_url, tmp_path, smtp_plain) as world:
        await world.add_user()
        yield world


def mail(sender: str = "app@example.com", to: str = "user@example.net") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Relayed"
    message.set_content("Hello through the relay.\n")
    return message


async def test_auth_plain_after_starttls_relays_and_delivers(world: RelayWorld) -> None:
    def send(client: smtplib.SMTP) -> dict[str, tuple[int, bytes]]:
        client.ehlo("app.test")
        assert not client.has_extn("auth"), "AUTH must not be offered before TLS"
        client.starttls(context=trusting())
        client.ehlo("app.test")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login(USERNAME, PASSWORD)
        return client.send_message(mail(), to_addrs=["user@example.net", "hidden@example.org"])

    refused = await world.smtplib(send)
    assert refused == {}
    [message] = await world.messages()
    assert message.account_id == world.account_id
    assert message.envelope_from == "app@example.com"
    kinds = {r.address: r.kind for r in await world.recipients(message.id)}
    assert kinds == {"user@example.net": "to", "hidden@example.org": "bcc"}
    await world.delivered(1)
    # not marked transactional-only: a copy per recipient (its own unsubscribe link)
    copies = world.upstream.messages
    assert sorted(r for c in copies for r in c.rcpt_tos) == [
        "hidden@example.org",
        "user@example.net",
    ]
    for arrived in copies:
        assert arrived.parsed["Subject"] == "Relayed"
        received = arrived.parsed["Received"]
        assert "from app.test ([127.0.0.1])" in received
        assert "by relay.test (Mailgate) with ESMTPSA" in received
        assert "hidden@example.org" not in arrived.data.decode()
        assert arrived.parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_auth_login_over_implicit_tls_with_aiosmtplib(world: RelayWorld) -> None:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=world.tls_port, use_tls=True, tls_context=trusting()
    )
    async with client:
        await client.login(USERNAME, PASSWORD)
        errors, reply = await client.send_message(mail())
    assert errors == {}
    assert reply.startswith("2.0.0 OK: queued as msg_")
    await world.delivered(1)
    assert "with ESMTPSA" in world.upstream.messages[0].parsed["Received"]


async def test_auth_login_mechanism_explicitly(world: RelayWorld) -> None:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=world.port, start_tls=True, tls_context=trusting()
    )
    async with client:
        await client.ehlo()  # again, after STARTTLS
        response = await client.auth_login(USERNAME, PASSWORD)
        assert response.code == 235
        errors, _ = await client.send_message(mail())
    assert errors == {}
    assert len(await world.messages()) == 1


async def test_wrong_password_then_too_many_failures_closes(world: RelayWorld) -> None:
    def attempt(client: smtplib.SMTP) -> list[int]:
        client.starttls(context=trusting())
        client.ehlo()
        client.user, client.password = USERNAME, "wrong password"
        codes = []
        for _ in range(3):
            try:
                client.auth("PLAIN", client.auth_plain)
            except smtplib.SMTPAuthenticationError as exc:
                codes.append(exc.smtp_code)
        try:
            client.noop()
        except smtplib.SMTPServerDisconnected:
            codes.append(-1)
        return codes

    codes = await world.smtplib(attempt)
    assert codes == [535, 535, 421, -1]  # the third failure ends the conversation
    assert await world.messages() == []


async def test_unknown_and_disabled_users_are_refused(world: RelayWorld) -> None:
    await world.add_user("disabled-user", PASSWORD, enabled=False)

    def attempt(username: str) -> int:
        def run(client: smtplib.SMTP) -> int:
            client.starttls(context=trusting())
            try:
                client.login(username, PASSWORD)
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code
            return 235

        return run

    assert await world.smtplib(attempt("nobody-here")) == 535
    assert await world.smtplib(attempt("disabled-user")) == 535


async def test_auth_before_starttls_is_refused(world: RelayWorld) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)
    async with client:
        await client.ehlo()
        assert not client.supports_extension("auth")
        response = await client.execute_command(b"AUTH", b"PLAIN", b"AGFwcC1tYWlsZXIAeA==")
        assert response.code == 538


async def test_plaintext_auth_when_the_operator_allows_it(
    fresh_database_url: str, tmp_path: Path, smtp_plain: SmtpServer
) -> None:
    async with relay_world(
        fresh_database_url, tmp_path, smtp_plain, smtp_allow_plaintext_auth=True
    ) as world:
        await world.add_user()
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)
        async with client:
            await client.login(USERNAME, PASSWORD)
            errors, _ = await client.send_message(mail())
        assert errors == {}
        await world.delivered(1)
        assert "with ESMTPA\tfor" in world.upstream.messages[0].parsed["Received"]


async def test_no_auth_no_relay(world: RelayWorld) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)
    async with client:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail("app@example.com")
    assert refused.value.code == 530
    assert await world.messages() == []


async def test_listed_network_relays_without_auth_for_its_account(world: RelayWorld) -> None:
    other = await world.new_account()
    await world.list_network("127.0.0.0/8", account_id=other)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=world.port, start_tls=False)
    async with client:
        errors, _ = await client.send_message(mail())
    assert errors == {}
    [message] = await world.messages()
    assert message.account_id == other


async def test_auth_wins_over_a_listed_network(world: RelayWorld) -> None:
    other = await world.new_account()
    await world.list_network("127.0.0.1", account_id=other)
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=world.port, start_tls=True, tls_context=trusting()
    )
    async with client:
        await client.login(USERNAME, PASSWORD)
        await client.send_message(mail())
    [message] = await world.messages()
    assert message.account_id == world.account_id


async def test_allowed_senders_check_envelope_and_header(world: RelayWorld) -> None:
    await world.add_user("restricted", PASSWORD, allowed_senders=["example.com"])
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=world.port, start_tls=True, tls_context=trusting()
    )
    async with client:
        await client.login("restricted", PASSWORD)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused_sender:
            await client.mail("intruder@elsewhere.test")
        assert refused_sender.value.code == 553
        assert "may not send as <intruder@elsewhere.test>" in refused_sender.value.message
        # An allowed envelope does not cover a forged From: header.
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail(
                "app@example.com", ["user@example.net"], mail("boss@elsewhere.test").as_bytes()
            )
        assert refused.value.code == 550
        errors, _ = await client.send_message(mail("app@example.com"))
        assert errors == {}
    assert len(await world.messages()) == 1


async def test_per_user_rate_limit(world: RelayWorld) -> None:
    await world.add_user("limited", PASSWORD, rate_limit=SendingRateLimit(2, 3600))
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=world.port, start_tls=True, tls_context=trusting()
    )
    async with client:
        await client.login("limited", PASSWORD)
        for _ in range(2):
            await client.send_message(mail())
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail("app@example.com")
    assert refused.value.code == 451
    assert len(await world.messages()) == 2


async def test_a_login_is_remembered_for_the_cache_time(world: RelayWorld) -> None:
    """A successful login is trusted for smtp_auth_cache_seconds (argon2 is costly): disabling
    the user takes effect after that; a different password is always checked."""

    async def login(password: str) -> int:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=world.port, start_tls=True, tls_context=trusting()
        )
        async with client:
            try:
                return (await client.login(USERNAME, password)).code
            except aiosmtplib.SMTPAuthenticationError as exc:
                return exc.code

    assert await login(PASSWORD) == 235
    async with world.node.database.session() as session:
        await session.execute(update(SmtpUser).values(is_enabled=False))
        await session.commit()
    assert await login(PASSWORD) == 235  # remembered
    assert await login("not the password") == 535
