"""probe() against real SMTP servers on real sockets (fixtures in tests/smtp_servers.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from mailgate.delivery import transport
from mailgate.delivery.transport import ProbeResult, TestMessage, probe
from mailgate.domain import AuthMethod, Security, SmtpEndpoint
from mailgate.errors import (
    SmtpAuthError,
    SmtpConnectionError,
    SmtpRejected,
    SmtpTlsError,
)
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer

TIMEOUT = 5.0

MESSAGE = TestMessage(
    sender="sender@example.com",
    recipient="someone@example.net",
    subject="Grüße aus Köln ✓",
    text="Hallo Welt, schöne Grüße.\nZweite Zeile — mit Ümlauten.\n",
    sender_name="Jürgen Müller",
    reply_to="replies@example.com",
)


def endpoint(
    server: SmtpServer, security: Security = Security.NONE, **options: Any
) -> SmtpEndpoint:
    return SmtpEndpoint(host=server.host, port=server.port, security=security, **options)


def credentials(password: str = SMTP_PASSWORD, **options: Any) -> dict[str, Any]:
    return {"username": SMTP_USER, "password": password, **options}


async def run(
    target: SmtpEndpoint, *, message: TestMessage | None = None, **options: Any
) -> ProbeResult:
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("helo_name", "client.test")
    return await probe(target, message=message, **options)


# --- delivery ------------------------------------------------------------------------------


async def test_plain_send_arrives_with_correct_headers(smtp_plain: SmtpServer) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    result = await run(endpoint(smtp_plain), message=MESSAGE)

    assert (result.tls, result.authenticated) == (False, False)
    assert result.server_reply.startswith("250 2.0.0 OK queued as")
    assert result.latency_ms >= 0
    [received] = smtp_plain.messages
    assert received.mail_from == MESSAGE.sender
    assert received.rcpt_tos == [MESSAGE.recipient]
    assert received.tls is False
    assert received.login is None
    mail = received.parsed
    [sender] = mail["From"].addresses
    assert sender == Address(display_name="Jürgen Müller", addr_spec="sender@example.com")
    assert mail["To"] == MESSAGE.recipient
    assert mail["Reply-To"] == MESSAGE.reply_to
    assert mail["Subject"] == MESSAGE.subject
    assert mail["Message-ID"] == result.message_id
    assert result.message_id is not None
    assert result.message_id.endswith("@example.com>")
    sent_at = mail["Date"].datetime
    assert before <= sent_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert mail.get_content().splitlines() == MESSAGE.text.splitlines()  # CRLF on the wire
    assert received.data.isascii()  # headers RFC 2047, body quoted-printable: 7-bit safe


async def test_plain_send_with_default_helo_name(smtp_plain: SmtpServer) -> None:
    ascii_message = TestMessage(
        sender="a@example.com", recipient="b@example.com", subject="Hi", text="Hello\n"
    )

    result = await probe(endpoint(smtp_plain), timeout=TIMEOUT, message=ascii_message)

    [received] = smtp_plain.messages
    assert received.parsed["From"] == "a@example.com"
    assert received.parsed.get_content().splitlines() == ["Hello"]
    assert result.message_id == received.parsed["Message-ID"]


async def test_non_ascii_addresses_use_smtputf8(smtp_plain: SmtpServer) -> None:
    message = TestMessage(
        sender="jürgen@example.com",
        recipient="zoë@example.net",
        subject="Hi",
        text="Hi\n",
        reply_to="antwort-jürgen@example.com",
    )

    await run(endpoint(smtp_plain), message=message)

    [received] = smtp_plain.messages
    assert received.mail_from == "jürgen@example.com"
    assert received.rcpt_tos == ["zoë@example.net"]
    assert received.parsed["To"] == "zoë@example.net"
    assert received.parsed["Reply-To"] == "antwort-jürgen@example.com"


@pytest.mark.parametrize(
    ("method", "mechanism"),
    [(AuthMethod.PLAIN, "PLAIN"), (AuthMethod.LOGIN, "LOGIN"), (AuthMethod.AUTO, "PLAIN")],
)
async def test_starttls_auth_send_arrives_encrypted(
    smtp_starttls: SmtpServer, tls_ca_bundle: Path, method: AuthMethod, mechanism: str
) -> None:
    target = endpoint(smtp_starttls, Security.STARTTLS, **credentials(auth_method=method))

    result = await run(target, message=MESSAGE, ca_bundle=tls_ca_bundle)

    assert (result.tls, result.authenticated) == (True, True)
    assert [(a.mechanism, a.login, a.success) for a in smtp_starttls.auth_attempts] == [
        (mechanism, SMTP_USER, True)
    ]
    [received] = smtp_starttls.messages
    assert received.tls is True
    assert received.login == SMTP_USER
    assert received.parsed["Subject"] == MESSAGE.subject


async def test_auth_over_plaintext_when_the_server_allows_it(
    smtp_auth_plaintext: SmtpServer,
) -> None:
    result = await run(endpoint(smtp_auth_plaintext, **credentials()), message=MESSAGE)

    assert (result.tls, result.authenticated) == (False, True)
    [received] = smtp_auth_plaintext.messages
    assert received.login == SMTP_USER


@pytest.mark.parametrize("method", [AuthMethod.PLAIN, AuthMethod.LOGIN])
async def test_wrong_password_is_auth_error_535_without_the_password(
    smtp_auth_plaintext: SmtpServer, method: AuthMethod
) -> None:
    wrong = "wr0ng-Pa55word"
    target = endpoint(smtp_auth_plaintext, **credentials(wrong, auth_method=method))

    with pytest.raises(SmtpAuthError) as caught:
        await run(target, message=MESSAGE)

    error = caught.value
    assert error.smtp_code == 535
    assert "535" in error.detail
    for text in (str(error), error.detail, error.message, repr(error.params)):
        assert wrong not in text
    assert smtp_auth_plaintext.messages == []


async def test_wrong_password_over_starttls(smtp_starttls: SmtpServer, tls_ca_bundle: Path) -> None:
    target = endpoint(smtp_starttls, Security.STARTTLS, **credentials("nope-nope"))

    with pytest.raises(SmtpAuthError) as caught:
        await run(target, ca_bundle=tls_ca_bundle)

    assert caught.value.smtp_code == 535
    assert "nope-nope" not in str(caught.value)


async def test_probe_without_message_authenticates_and_sends_nothing(
    smtp_starttls: SmtpServer, tls_ca_bundle: Path
) -> None:
    target = endpoint(smtp_starttls, Security.STARTTLS, **credentials())

    result = await run(target, ca_bundle=tls_ca_bundle)

    assert (result.tls, result.authenticated, result.message_id) == (True, True, None)
    assert result.server_reply.startswith("235")
    assert [a.success for a in smtp_starttls.auth_attempts] == [True]
    assert smtp_starttls.messages == []


# --- TLS -----------------------------------------------------------------------------------


async def test_implicit_tls_with_ca_bundle(
    smtp_implicit_tls: SmtpServer, tls_ca_bundle: Path
) -> None:
    target = endpoint(smtp_implicit_tls, Security.TLS, **credentials())

    result = await run(target, message=MESSAGE, ca_bundle=tls_ca_bundle)

    assert (result.tls, result.authenticated) == (True, True)
    [received] = smtp_implicit_tls.messages
    assert (received.tls, received.login) == (True, SMTP_USER)


async def test_implicit_tls_verifies_the_host_name(
    smtp_implicit_tls: SmtpServer, tls_ca_bundle: Path
) -> None:
    target = SmtpEndpoint(
        host="localhost", port=smtp_implicit_tls.port, security=Security.TLS, **credentials()
    )

    result = await run(target, ca_bundle=tls_ca_bundle)

    assert result.tls is True


async def test_implicit_tls_without_ca_bundle_fails_verification(
    smtp_implicit_tls: SmtpServer,
) -> None:
    target = endpoint(smtp_implicit_tls, Security.TLS, **credentials())

    with pytest.raises(SmtpTlsError) as caught:
        await run(target, message=MESSAGE)

    assert "certificate verification failed" in caught.value.detail
    assert smtp_implicit_tls.auth_attempts == []


async def test_implicit_tls_without_verification_works(smtp_implicit_tls: SmtpServer) -> None:
    target = endpoint(smtp_implicit_tls, Security.TLS, verify_tls=False, **credentials())

    result = await run(target, message=MESSAGE)

    assert (result.tls, result.authenticated) == (True, True)
    assert len(smtp_implicit_tls.messages) == 1


async def test_starttls_without_ca_bundle_fails_verification(smtp_starttls: SmtpServer) -> None:
    target = endpoint(smtp_starttls, Security.STARTTLS, **credentials())

    with pytest.raises(SmtpTlsError) as caught:
        await run(target)

    assert "certificate verification failed" in caught.value.detail
    assert smtp_starttls.auth_attempts == []


async def test_starttls_required_but_not_offered(smtp_plain: SmtpServer) -> None:
    with pytest.raises(SmtpTlsError) as caught:
        await run(endpoint(smtp_plain, Security.STARTTLS), message=MESSAGE)

    assert "server does not offer STARTTLS" in caught.value.detail
    assert smtp_plain.messages == []


async def test_implicit_tls_against_a_plaintext_server(smtp_plain: SmtpServer) -> None:
    with pytest.raises(SmtpTlsError) as caught:
        await run(endpoint(smtp_plain, Security.TLS))

    assert "TLS handshake" in caught.value.detail


async def test_missing_ca_bundle_file(smtp_implicit_tls: SmtpServer, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"

    with pytest.raises(SmtpTlsError) as caught:
        await run(endpoint(smtp_implicit_tls, Security.TLS), ca_bundle=missing)

    assert str(missing) in caught.value.detail


async def test_security_none_does_not_upgrade(smtp_starttls: SmtpServer) -> None:
    # The server offers STARTTLS and requires it: without the upgrade it refuses MAIL.
    with pytest.raises(SmtpRejected) as caught:
        await run(endpoint(smtp_starttls), message=MESSAGE)

    assert caught.value.smtp_code == 530
    assert "STARTTLS" in caught.value.detail
    assert smtp_starttls.messages == []


async def test_security_none_with_credentials_finds_no_auth(smtp_starttls: SmtpServer) -> None:
    # Before TLS the server does not advertise AUTH; we must not upgrade behind the user's back.
    with pytest.raises(SmtpAuthError) as caught:
        await run(endpoint(smtp_starttls, **credentials()))

    assert "server does not offer AUTH" in caught.value.detail
    assert "STARTTLS" in caught.value.detail
    assert smtp_starttls.auth_attempts == []


# --- AUTH choices --------------------------------------------------------------------------


async def test_ntlm_is_refused_before_connecting(refused_port: int) -> None:
    target = SmtpEndpoint(
        host="127.0.0.1",
        port=refused_port,
        security=Security.NONE,
        **credentials(auth_method=AuthMethod.NTLM),
    )

    with pytest.raises(SmtpAuthError) as caught:
        await run(target)

    assert caught.value.detail == "NTLM authentication is not supported"


@pytest.mark.parametrize("method", [AuthMethod.XOAUTH2, AuthMethod.CRAM_MD5])
async def test_mechanism_the_server_does_not_offer(
    smtp_auth_plaintext: SmtpServer, method: AuthMethod
) -> None:
    target = endpoint(smtp_auth_plaintext, **credentials(auth_method=method))

    with pytest.raises(SmtpAuthError) as caught:
        await run(target)

    assert f"does not offer AUTH {method.value.upper()}" in caught.value.detail
    assert "LOGIN, PLAIN" in caught.value.detail
    assert smtp_auth_plaintext.auth_attempts == []


async def test_username_but_server_offers_no_auth(smtp_plain: SmtpServer) -> None:
    with pytest.raises(SmtpAuthError) as caught:
        await run(endpoint(smtp_plain, **credentials()))

    assert "server does not offer AUTH" in caught.value.detail


# --- connection failures -------------------------------------------------------------------


async def test_refused_port(refused_port: int) -> None:
    target = SmtpEndpoint(host="127.0.0.1", port=refused_port, security=Security.NONE)

    with pytest.raises(SmtpConnectionError) as caught:
        await run(target)

    assert f"connection refused by 127.0.0.1:{refused_port}" in caught.value.detail


async def test_stalled_server_times_out(stalled_server: tuple[str, int]) -> None:
    host, port = stalled_server
    started = time.monotonic()

    with pytest.raises(SmtpConnectionError) as caught:
        await run(SmtpEndpoint(host=host, port=port, security=Security.NONE), timeout=1)

    assert time.monotonic() - started < 4
    assert "timed out after 1s" in caught.value.detail
    assert f"{host}:{port}" in caught.value.detail


async def test_unresolvable_host() -> None:
    target = SmtpEndpoint(host="nonexistent.invalid", port=587, security=Security.STARTTLS)

    with pytest.raises(SmtpConnectionError) as caught:
        await run(target)

    assert "could not resolve host nonexistent.invalid" in caught.value.detail


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "code", "reply"),
    [
        ("reject-me@example.net", 550, "550 5.1.1 User unknown"),
        ("defer-me@example.net", 451, "451 4.3.0 Try again later"),
    ],
)
async def test_recipient_refused(
    smtp_rejecting: SmtpServer, recipient: str, code: int, reply: str
) -> None:
    message = TestMessage(sender="a@example.com", recipient=recipient, subject="s", text="t")

    with pytest.raises(SmtpRejected) as caught:
        await run(endpoint(smtp_rejecting), message=message)

    assert caught.value.smtp_code == code
    assert reply in caught.value.detail
    assert recipient in caught.value.detail
    assert smtp_rejecting.messages == []


async def test_rejecting_server_accepts_other_recipients(smtp_rejecting: SmtpServer) -> None:
    result = await run(endpoint(smtp_rejecting), message=MESSAGE)

    assert result.server_reply.startswith("250")
    assert len(smtp_rejecting.messages) == 1


# --- the translation table, for failures a local server cannot easily stage -----------------
# (tests may import aiosmtplib to build its exceptions; src/ code outside transport.py may not)


def _caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("stage", "raised", "expected", "code", "words"),
    [
        (
            transport._CONNECT,
            _caused(aiosmtplib.SMTPConnectTimeoutError("x"), TimeoutError()),
            SmtpConnectionError,
            None,
            "timed out after 5s connecting to mx.example:25",
        ),
        (
            transport._CONNECT,
            _caused(aiosmtplib.SMTPConnectError("x"), ConnectionResetError(104, "reset")),
            SmtpConnectionError,
            None,
            "connection reset by mx.example:25",
        ),
        (
            transport._CONNECT,
            aiosmtplib.SMTPConnectResponseError(554, "5.7.1 go away"),
            SmtpConnectionError,
            554,
            "refused the session: 554 5.7.1 go away",
        ),
        (
            transport._MAIL,
            aiosmtplib.SMTPReadTimeoutError("x"),
            SmtpConnectionError,
            None,
            "timed out after 5s waiting for the reply to MAIL FROM from mx.example:25",
        ),
        (
            transport._DATA,
            aiosmtplib.SMTPServerDisconnected("x"),
            SmtpConnectionError,
            None,
            "mx.example:25 closed the connection during DATA",
        ),
        (
            transport._STARTTLS,
            aiosmtplib.SMTPServerDisconnected("x"),
            SmtpTlsError,
            None,
            "closed the connection during STARTTLS",
        ),
        (
            transport._STARTTLS,
            aiosmtplib.SMTPResponseException(454, "4.7.0 TLS not available"),
            SmtpTlsError,
            454,
            "refused STARTTLS: 454 4.7.0 TLS not available",
        ),
        (
            transport._AUTH,
            aiosmtplib.SMTPAuthenticationError(534, "5.7.9 Please log in with your browser"),
            SmtpAuthError,
            534,
            "534 5.7.9 Please log in with your browser",
        ),
        (
            transport._DATA,
            aiosmtplib.SMTPDataError(554, "5.7.1 Message rejected as spam"),
            SmtpRejected,
            554,
            "refused the message: 554 5.7.1 Message rejected as spam",
        ),
        (
            transport._RCPT,
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(452, "4.2.2 Mailbox full", "x@example.net")]
            ),
            SmtpRejected,
            452,
            "recipient x@example.net: 452 4.2.2 Mailbox full",
        ),
    ],
)
def test_translation(
    stage: Any, raised: BaseException, expected: type[Exception], code: int | None, words: str
) -> None:
    session = transport._Session(host="mx.example", port=25, timeout=5.0, password=None)
    session.stage = stage

    with pytest.raises(expected) as caught, transport._translated_errors(session):
        raise raised

    assert caught.value.smtp_code == code  # type: ignore[attr-defined]
    assert words in caught.value.detail  # type: ignore[attr-defined]
    assert caught.value.__cause__ is raised


def test_translation_redacts_the_password() -> None:
    session = transport._Session(host="mx.example", port=25, timeout=5.0, password="hunter22")
    session.stage = transport._AUTH

    with pytest.raises(SmtpAuthError) as caught, transport._translated_errors(session):
        raise aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad password hunter22")

    assert "hunter22" not in caught.value.detail
    assert "535 5.7.8 bad password ***" in caught.value.detail


def test_translation_leaves_other_errors_alone() -> None:
    session = transport._Session(host="mx.example", port=25, timeout=5.0, password=None)

    with pytest.raises(ValueError, match="a bug"), transport._translated_errors(session):
        raise ValueError("a bug")


async def test_an_encoded_word_cannot_smuggle_a_header_into_the_test_message(
    smtp_plain: SmtpServer,
) -> None:
    # CVE-2024-6923: the stdlib folds "=?utf-8?q?...=0D=0A...?=" back into a real line break.
    hostile = "=?utf-8?q?s=0D=0ABcc:_victim@example.com?="
    await probe(
        endpoint(smtp_plain),
        timeout=5,
        message=TestMessage(
            sender="sender@example.com",
            recipient="rcpt@example.com",
            subject=hostile,
            text="hello",
            sender_name=hostile,
        ),
    )
    [received] = smtp_plain.messages
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"victim@example.com" not in head.replace(b"=40", b"@")
    assert received.rcpt_tos == ["rcpt@example.com"]
