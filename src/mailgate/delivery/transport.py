"""One SMTP session with an upstream server, and the one place aiosmtplib errors are translated.

:func:`probe` connects, greets, secures (STARTTLS or implicit TLS), authenticates and,
when given a :class:`TestMessage`, delivers it. Nothing else in Mailgate imports aiosmtplib.

Every failure leaves as an :class:`~mailgate.errors.SmtpError`. The translation is a lookup
table from exception type to a small function, searched along the exception's MRO (most
specific class first), like httpx's ``map_httpcore_exceptions``::

    socket.gaierror                       -> SmtpConnectionError  could not resolve host
    ConnectionRefusedError                -> SmtpConnectionError  connection refused
    ConnectionResetError, other OSError   -> SmtpConnectionError
    TimeoutError, SMTPTimeoutError        -> SmtpConnectionError  timed out after Ns ...
    SMTPConnectTimeoutError               -> SmtpConnectionError  (connect or greeting)
    SMTPConnectError                      -> its cause (an OSError above, or ssl below)
    SMTPConnectResponseError              -> SmtpConnectionError  greeting was not 220
    SMTPServerDisconnected                -> SmtpConnectionError  (SmtpTlsError in STARTTLS)
    ssl.SSLCertVerificationError          -> SmtpTlsError         certificate not trusted
    ssl.SSLError                          -> SmtpTlsError         handshake failed
    SMTPAuthenticationError               -> SmtpAuthError        535, 534, 530 ...
    SMTPSenderRefused, SMTPRecipientRefused,
    SMTPRecipientsRefused, SMTPDataError  -> SmtpRejected         4xx / 5xx, code kept
    other SMTPResponseException           -> the current stage's refusal error, code kept

Details are plain English that a person can act on, carry the server's reply code and text
where there is one, and never contain the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, NamedTuple

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from mailgate.domain import AuthMethod, Security, SmtpEndpoint
from mailgate.errors import (
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpRejected,
    SmtpTlsError,
)

__all__ = ["ProbeResult", "TestMessage", "probe"]


@dataclass(frozen=True)
class TestMessage:
    """A small text message to deliver through an upstream, to prove that it works."""

    __test__ = False  # not a pytest test class, despite the name

    sender: str  # envelope sender and From address
    recipient: str
    subject: str
    text: str
    sender_name: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """What a successful session found."""

    latency_ms: int  # total wall time, connect to QUIT
    tls: bool  # the session ended up encrypted
    authenticated: bool
    server_reply: str  # last reply before QUIT, e.g. "250 OK queued as X"
    message_id: str | None  # Message-ID of the test message, when one was sent


# Best first. NTLM is refused before connecting; XOAUTH2 is never picked automatically.
_AUTO_MECHANISMS = ("cram-md5", "plain", "login")


async def probe(
    endpoint: SmtpEndpoint,
    *,
    timeout: float,  # noqa: ASYNC109 - per connect and per command, not one deadline
    ca_bundle: Path | None = None,
    helo_name: str | None = None,
    message: TestMessage | None = None,
) -> ProbeResult:
    """Open one session with ``endpoint``; deliver ``message`` if given; QUIT.

    ``timeout`` (seconds) applies to connecting and to each command. Certificates are
    verified against the system store plus ``ca_bundle`` unless ``endpoint.verify_tls``
    is false. Raises an :class:`~mailgate.errors.SmtpError` subclass on any failure.
    """
    if endpoint.username is not None and endpoint.auth_method is AuthMethod.NTLM:
        raise SmtpAuthError("NTLM authentication is not supported")
    started = time.perf_counter()
    tls_context = None
    if endpoint.security is not Security.NONE:
        tls_context = await _load_tls_context(verify=endpoint.verify_tls, ca_bundle=ca_bundle)
    client = SMTP(
        hostname=endpoint.host,
        port=endpoint.port,
        timeout=timeout,
        local_hostname=helo_name,
        use_tls=endpoint.security is Security.TLS,
        start_tls=False,  # never upgrade on our behalf: Security.NONE means plaintext
        tls_context=tls_context,
    )
    session = _Session(
        host=endpoint.host, port=endpoint.port, timeout=timeout, password=endpoint.password
    )
    message_id = None
    transport = None
    try:
        with _translated_errors(session):
            await client.connect()
            transport = client.transport
            reply = await _greet(client, session)
            if endpoint.security is Security.STARTTLS:
                reply = await _start_tls(client, session)
                transport = client.transport
            if endpoint.username is not None:
                reply = await _authenticate(client, session, endpoint, endpoint.username)
            if message is not None:
                reply, message_id = await _send(client, session, message)
        with contextlib.suppress(SMTPException, OSError):
            await client.quit()
    finally:
        client.close()
        if isinstance(transport, asyncio.WriteTransport):
            # close() on a TLS transport starts a close_notify exchange that holds the socket
            # open until the server answers; the session is over, so free the socket now.
            transport.abort()
    return ProbeResult(
        latency_ms=round((time.perf_counter() - started) * 1000),
        tls=endpoint.security is not Security.NONE,
        authenticated=endpoint.username is not None,
        server_reply=session.redact(_reply_text(reply.code, reply.message)),
        message_id=message_id,
    )


# --- the session, step by step -------------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    """Where in the session we are, so a failure can say so."""

    command: str
    refusal: type[SmtpError]  # raised when the server answers this stage with an error reply
    broken: type[SmtpError] = SmtpConnectionError  # raised when the connection drops here


_CONNECT = _Stage("connect", SmtpConnectionError)
_EHLO = _Stage("EHLO", SmtpConnectionError)
_STARTTLS = _Stage("STARTTLS", SmtpTlsError, broken=SmtpTlsError)
_AUTH = _Stage("AUTH", SmtpAuthError)
_MAIL = _Stage("MAIL FROM", SmtpRejected)
_RCPT = _Stage("RCPT TO", SmtpRejected)
_DATA = _Stage("DATA", SmtpRejected)


@dataclass
class _Session:
    """Mutable progress of one probe: the facts error translation needs."""

    host: str
    port: int
    timeout: float
    password: str | None
    stage: _Stage = _CONNECT

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def redact(self, text: str) -> str:
        if self.password:
            text = text.replace(self.password, "***")
        return text


async def _greet(client: SMTP, session: _Session) -> SMTPResponse:
    """EHLO, or HELO for a server that does not speak ESMTP."""
    session.stage = _EHLO
    try:
        return await client.ehlo()
    except SMTPHeloError:
        if not client.is_connected:
            raise
        return await client.helo()


async def _start_tls(client: SMTP, session: _Session) -> SMTPResponse:
    session.stage = _STARTTLS
    if not client.supports_extension("starttls"):
        raise SmtpTlsError(
            f"server does not offer STARTTLS ({session.address}); check the port and the "
            "security setting (implicit TLS is usually port 465)"
        )
    await client.starttls()
    return await _greet(client, session)  # RFC 3207: forget everything learnt before TLS


async def _authenticate(
    client: SMTP, session: _Session, endpoint: SmtpEndpoint, username: str
) -> SMTPResponse:
    session.stage = _AUTH
    mechanism = _choose_mechanism(client, session, endpoint)
    password = endpoint.password or ""
    match mechanism:
        case "cram-md5":
            return await client.auth_crammd5(username, password)
        case "plain":
            return await client.auth_plain(username, password)
        case "login":
            return await client.auth_login(username, password)
        case _:  # "xoauth2": the password is the bearer access token
            return await client.auth_xoauth2(username, password)


def _choose_mechanism(client: SMTP, session: _Session, endpoint: SmtpEndpoint) -> str:
    if not client.supports_extension("auth"):
        hint = ""
        if endpoint.security is Security.NONE and client.supports_extension("starttls"):
            hint = "; it offers STARTTLS, so set the security to STARTTLS"
        raise SmtpAuthError(f"server does not offer AUTH ({session.address}){hint}")
    offered = client.server_auth_methods
    if endpoint.auth_method is AuthMethod.AUTO:
        for mechanism in _AUTO_MECHANISMS:
            if mechanism in offered:
                return mechanism
        raise SmtpAuthError(
            f"server offers no supported AUTH mechanism (it offers {_listing(offered)}; "
            "Mailgate supports CRAM-MD5, PLAIN, LOGIN and XOAUTH2)"
        )
    mechanism = endpoint.auth_method.value
    if mechanism not in offered:
        raise SmtpAuthError(
            f"server does not offer AUTH {mechanism.upper()} (it offers {_listing(offered)})"
        )
    return mechanism


async def _send(client: SMTP, session: _Session, message: TestMessage) -> tuple[SMTPResponse, str]:
    mail, message_id = _build_message(message)
    addresses = (message.sender, message.recipient, message.reply_to or "")
    utf8 = not all(address.isascii() for address in addresses)  # RFC 6531 SMTPUTF8
    session.stage = _MAIL
    options = []
    if utf8:
        if not client.supports_extension("smtputf8"):
            raise SmtpRejected(
                "an address contains non-ASCII characters, but the server does not support SMTPUTF8"
            )
        options.append("SMTPUTF8")
    encoding = "utf-8" if utf8 else "ascii"
    await client.mail(message.sender, options=options, encoding=encoding)
    session.stage = _RCPT
    await client.rcpt(message.recipient, encoding=encoding)
    session.stage = _DATA
    payload = mail.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    return await client.data(payload), message_id


def _build_message(message: TestMessage) -> tuple[EmailMessage, str]:
    """A text/plain message; non-ASCII headers and body survive any 7-bit server."""
    mail = EmailMessage()
    mail["From"] = _address(message.sender, message.sender_name)
    mail["To"] = _address(message.recipient)
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    message_id = make_msgid(domain=_message_id_domain(message.sender))
    mail["Message-ID"] = message_id
    if message.reply_to:
        mail["Reply-To"] = _address(message.reply_to)
    mail.set_content(message.text, cte=None if message.text.isascii() else "quoted-printable")
    return mail, message_id


def _address(address: str, name: str | None = None) -> Address:
    # Built from parts: parsing an addr_spec rejects non-ASCII local parts (SMTPUTF8).
    username, at, domain = address.rpartition("@")
    if not at:
        username, domain = address, ""
    return Address(display_name=name or "", username=username, domain=domain)


def _message_id_domain(sender: str) -> str:
    domain = sender.rpartition("@")[2]
    try:
        return domain.encode("idna").decode("ascii") if domain else "localhost"
    except UnicodeError:
        return "localhost"


async def _load_tls_context(*, verify: bool, ca_bundle: Path | None) -> ssl.SSLContext:
    try:
        # loading the system store reads files: keep it off the event loop
        return await asyncio.to_thread(_tls_context, verify=verify, ca_bundle=ca_bundle)
    except OSError as exc:  # FileNotFoundError, or ssl.SSLError for a bad PEM
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise SmtpTlsError(f"could not load the CA bundle {ca_bundle}: {reason}") from exc


def _tls_context(*, verify: bool, ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:  # a self-signed upstream the operator chose to trust blindly
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_bundle is not None:
        context.load_verify_locations(cafile=ca_bundle)
    return context


# --- error translation ---------------------------------------------------------------------


class _Failure(NamedTuple):
    error: type[SmtpError]
    detail: str
    smtp_code: int | None = None


_Translator = Callable[[Any, _Session], _Failure]


@contextlib.contextmanager
def _translated_errors(session: _Session) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        failure = _translate(exc, session)
        if failure is None:
            raise
        raise failure.error(session.redact(failure.detail), failure.smtp_code) from exc


def _translate(exc: BaseException, session: _Session) -> _Failure | None:
    for cls in type(exc).__mro__:
        translator = _TRANSLATORS.get(cls)
        if translator is not None:
            return translator(exc, session)
    return None  # not ours to translate: a bug, or an SmtpError raised on purpose


def _reply_text(code: int, text: str) -> str:
    return " ".join([str(code), *text.split()])


def _listing(mechanisms: list[str]) -> str:
    return ", ".join(m.upper() for m in mechanisms) or "none"


def _unresolvable(exc: socket.gaierror, session: _Session) -> _Failure:
    return _Failure(SmtpConnectionError, f"could not resolve host {session.host} ({exc.strerror})")


def _refused(exc: ConnectionRefusedError, session: _Session) -> _Failure:
    return _Failure(
        SmtpConnectionError,
        f"connection refused by {session.address}: nothing is listening on that port, "
        "or a firewall rejects the connection",
    )


def _reset(exc: ConnectionResetError, session: _Session) -> _Failure:
    return _Failure(
        session.stage.broken, f"connection reset by {session.address} {_during(session)}"
    )


def _unreachable(exc: OSError, session: _Session) -> _Failure:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return _Failure(SmtpConnectionError, f"could not connect to {session.address}: {reason}")


def _timed_out(exc: TimeoutError, session: _Session) -> _Failure:
    if session.stage is _CONNECT:
        doing = f"connecting to {session.address}"
    else:
        doing = f"waiting for the reply to {session.stage.command} from {session.address}"
    return _Failure(SmtpConnectionError, f"timed out after {session.timeout:g}s {doing}")


def _connect_timed_out(exc: SMTPConnectTimeoutError, session: _Session) -> _Failure:
    if isinstance(exc.__cause__, SMTPTimeoutError):  # TCP connected, no 220 greeting
        return _Failure(
            SmtpConnectionError,
            f"timed out after {session.timeout:g}s waiting for the greeting from "
            f"{session.address}: the server accepted the connection but said nothing "
            "(is this an SMTP port, or does it expect implicit TLS?)",
        )
    return _timed_out(exc, session)


def _connect_failed(exc: SMTPConnectError, session: _Session) -> _Failure:
    cause = exc.__cause__
    if isinstance(cause, OSError):  # aiosmtplib wraps the socket or ssl error
        failure = _translate(cause, session)
        if failure is not None:
            return failure
    return _Failure(SmtpConnectionError, f"could not connect to {session.address}: {exc}")


def _disconnected(exc: SMTPServerDisconnected, session: _Session) -> _Failure:
    return _Failure(
        session.stage.broken,
        f"{session.address} closed the connection {_during(session)}",
    )


def _during(session: _Session) -> str:
    if session.stage is _CONNECT:
        return "before greeting us"
    return f"during {session.stage.command}"


def _greeting_refused(exc: SMTPConnectResponseError, session: _Session) -> _Failure:
    return _Failure(
        SmtpConnectionError,
        f"{session.address} refused the session: {_reply_text(exc.code, exc.message)}",
        exc.code,
    )


def _untrusted_certificate(exc: ssl.SSLCertVerificationError, session: _Session) -> _Failure:
    reason = exc.verify_message or exc.reason or str(exc)
    return _Failure(
        SmtpTlsError,
        f"certificate verification failed for {session.host}: {reason}; if the server uses "
        "a private CA, configure its CA bundle, or turn off certificate verification for "
        "a self-signed server you trust",
    )


def _handshake_failed(exc: ssl.SSLError, session: _Session) -> _Failure:
    return _Failure(
        SmtpTlsError,
        f"TLS handshake with {session.address} failed ({exc.reason or exc}); check that "
        "the port matches the security setting (implicit TLS is usually port 465, "
        "STARTTLS 587)",
    )


def _login_rejected(exc: SMTPAuthenticationError, session: _Session) -> _Failure:
    return _Failure(
        SmtpAuthError,
        f"the server rejected the login: {_reply_text(exc.code, exc.message)}; "
        "check the username and password",
        exc.code,
    )


def _sender_refused(exc: SMTPSenderRefused, session: _Session) -> _Failure:
    return _Failure(
        SmtpRejected,
        f"the server refused the sender {exc.sender}: {_reply_text(exc.code, exc.message)}",
        exc.code,
    )


def _recipient_refused(exc: SMTPRecipientRefused, session: _Session) -> _Failure:
    return _Failure(
        SmtpRejected,
        f"the server refused the recipient {exc.recipient}: {_reply_text(exc.code, exc.message)}",
        exc.code,
    )


def _recipients_refused(exc: SMTPRecipientsRefused, session: _Session) -> _Failure:
    return _recipient_refused(exc.recipients[0], session)


def _data_refused(exc: SMTPDataError, session: _Session) -> _Failure:
    return _Failure(
        SmtpRejected,
        f"the server refused the message: {_reply_text(exc.code, exc.message)}",
        exc.code,
    )


def _reply_refused(exc: SMTPResponseException, session: _Session) -> _Failure:
    return _Failure(
        session.stage.refusal,
        f"the server refused {session.stage.command}: {_reply_text(exc.code, exc.message)}",
        exc.code,
    )


def _smtp_failed(exc: SMTPException, session: _Session) -> _Failure:
    return _Failure(
        session.stage.refusal,
        f"{session.stage.command} with {session.address} failed: {exc.message}",
    )


_TRANSLATORS: dict[type[BaseException], _Translator] = {
    # socket and ssl
    socket.gaierror: _unresolvable,
    ConnectionRefusedError: _refused,
    ConnectionResetError: _reset,
    TimeoutError: _timed_out,  # also asyncio.TimeoutError
    ssl.SSLCertVerificationError: _untrusted_certificate,
    ssl.SSLError: _handshake_failed,
    OSError: _unreachable,
    # aiosmtplib: transport
    SMTPConnectTimeoutError: _connect_timed_out,
    SMTPConnectResponseError: _greeting_refused,
    SMTPConnectError: _connect_failed,
    SMTPTimeoutError: _timed_out,
    SMTPServerDisconnected: _disconnected,
    # aiosmtplib: replies
    SMTPAuthenticationError: _login_rejected,
    SMTPSenderRefused: _sender_refused,
    SMTPRecipientRefused: _recipient_refused,
    SMTPRecipientsRefused: _recipients_refused,
    SMTPDataError: _data_refused,
    SMTPResponseException: _reply_refused,
    SMTPException: _smtp_failed,
}
