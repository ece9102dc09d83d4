"""SMTP sessions with an upstream server, and the one place aiosmtplib errors are translated.

Both ways in open a session the same way (:func:`_open_session`: connect, greet, secure
with STARTTLS or implicit TLS, authenticate) and translate failures with the same table:

- :func:`probe` opens one session and, when given a :class:`TestMessage`, delivers it.
- :func:`connect` opens a :class:`SmtpConnection` that delivers message after message
  (:meth:`SmtpConnection.transact`), for :mod:`mailgate.delivery.smtp_pool`. aiosmtplib does
  not pipeline, and its protocol hands out one reply per read (replies that arrive together
  or early are dropped), so once the session is open the connection takes the transport over
  with a small protocol of its own (:class:`_Wire`, replies parsed by :class:`_ReplyParser`)
  and speaks MAIL / RCPT / DATA itself: in one write when the server offers PIPELINING
  (RFC 2920), one command at a time otherwise.

Nothing else in Mailgate imports aiosmtplib.

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
    _MalformedReply                       -> SmtpConnectionError  not an SMTP reply

Details are plain English that a person can act on, carry the server's reply code and text
where there is one, and never contain the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

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
    SMTPStatus,
    SMTPTimeoutError,
)

from mailgate.delivery.mime import build_message
from mailgate.domain import AuthMethod, Mailbox, MessageDraft, Security, SmtpEndpoint
from mailgate.errors import (
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpRejected,
    SmtpTlsError,
)

__all__ = [
    "Envelope",
    "ProbeResult",
    "Reply",
    "SmtpConnection",
    "TestMessage",
    "Transaction",
    "connect",
    "load_tls_context",
    "probe",
]


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
    _check_supported(endpoint)  # before loading certificates, not only before connecting
    started = time.perf_counter()
    tls_context = await load_tls_context(endpoint, ca_bundle)
    session = _Session(
        host=endpoint.host, port=endpoint.port, timeout=timeout, password=endpoint.password
    )
    opened = await _open_session(endpoint, session, tls_context=tls_context, helo_name=helo_name)
    client, reply, message_id = opened.client, opened.reply, None
    try:
        if message is not None:
            with _translated_errors(session):
                reply, message_id = await _send(client, session, message)
        with contextlib.suppress(SMTPException, OSError):
            await client.quit()
    finally:
        _hang_up(client, opened.transport)
    return ProbeResult(
        latency_ms=round((time.perf_counter() - started) * 1000),
        tls=endpoint.security is not Security.NONE,
        authenticated=endpoint.login is not None,
        server_reply=session.redact(_reply_text(reply.code, reply.message)),
        message_id=message_id,
    )


async def load_tls_context(endpoint: SmtpEndpoint, ca_bundle: Path | None) -> ssl.SSLContext | None:
    """The TLS settings for ``endpoint`` (None for plaintext); load once, use for many sessions.

    Raises :class:`~mailgate.errors.SmtpTlsError` when ``ca_bundle`` cannot be read.
    """
    if endpoint.security is Security.NONE:
        return None
    return await _load_tls_context(verify=endpoint.verify_tls, ca_bundle=ca_bundle)


async def connect(
    endpoint: SmtpEndpoint,
    *,
    timeout: float,  # noqa: ASYNC109 - per connect and per command, not one deadline
    tls_context: ssl.SSLContext | None,
    helo_name: str | None = None,
    pipelining: bool = True,
) -> SmtpConnection:
    """Open an authenticated session with ``endpoint``, ready for :meth:`SmtpConnection.transact`.

    ``tls_context`` comes from :func:`load_tls_context`. ``pipelining=False`` sends one
    command at a time even when the server offers PIPELINING. Raises an
    :class:`~mailgate.errors.SmtpError` subclass when the session cannot be opened.
    """
    session = _Session(
        host=endpoint.host, port=endpoint.port, timeout=timeout, password=endpoint.password
    )
    opened = await _open_session(endpoint, session, tls_context=tls_context, helo_name=helo_name)
    extensions = frozenset(opened.client.esmtp_extensions)
    # From here on the transport is ours: aiosmtplib's client and protocol are left behind.
    wire = _Wire(opened.transport)
    opened.transport.set_protocol(wire)
    return SmtpConnection(
        wire, session, extensions=extensions, pipelining=pipelining and "pipelining" in extensions
    )


# --- opening a session, step by step --------------------------------------------------------


def _check_supported(endpoint: SmtpEndpoint) -> None:
    if endpoint.login is not None and endpoint.auth_method is AuthMethod.NTLM:
        raise SmtpAuthError("NTLM authentication is not supported")


@dataclass(frozen=True)
class _Opened:
    client: SMTP
    transport: asyncio.Transport  # the current one: the TLS transport after STARTTLS
    reply: SMTPResponse  # the last reply: to EHLO, or to AUTH


async def _open_session(
    endpoint: SmtpEndpoint,
    session: _Session,
    *,
    tls_context: ssl.SSLContext | None,
    helo_name: str | None,
) -> _Opened:
    """Connect, greet, secure and authenticate as ``endpoint`` says; translated errors."""
    _check_supported(endpoint)
    client = SMTP(
        hostname=endpoint.host,
        port=endpoint.port,
        timeout=session.timeout,
        local_hostname=helo_name,
        use_tls=endpoint.security is Security.TLS,
        start_tls=False,  # never upgrade on our behalf: Security.NONE means plaintext
        tls_context=tls_context,
    )
    transport = None
    try:
        with _translated_errors(session):
            await client.connect()
            transport = client.transport
            reply = await _greet(client, session)
            if endpoint.security is Security.STARTTLS:
                reply = await _start_tls(client, session)
                transport = client.transport
            if endpoint.login is not None:
                reply = await _authenticate(client, session, endpoint, endpoint.login)
            if transport is None:  # lost on the way
                raise SMTPServerDisconnected("Connection lost")
    except BaseException:
        _hang_up(client, transport)
        raise
    # A stream transport; not always an asyncio.Transport subclass (uvloop's are not).
    return _Opened(client, cast(asyncio.Transport, transport), reply)


def _hang_up(client: SMTP, transport: asyncio.BaseTransport | None) -> None:
    client.close()
    if transport is not None:
        # close() on a TLS transport starts a close_notify exchange that holds the socket
        # open until the server answers; the session is over, so free the socket now.
        cast(asyncio.Transport, transport).abort()


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
_RSET = _Stage("RSET", SmtpConnectionError)
_QUIT = _Stage("QUIT", SmtpConnectionError)


@dataclass
class _Session:
    """Mutable progress of one session: the facts error translation needs."""

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
    # The one MIME builder writes the headers: it refuses injection (CVE-2024-6923 and kin).
    built = build_message(
        MessageDraft(
            sender=Mailbox(message.sender, message.sender_name),
            to=(Mailbox(message.recipient),),
            reply_to=(Mailbox(message.reply_to),) if message.reply_to else (),
            subject=message.subject,
            text=message.text,
        )
    )
    session.stage = _MAIL
    options = []
    if built.smtputf8:
        if not client.supports_extension("smtputf8"):
            raise SmtpRejected(
                "an address contains non-ASCII characters, but the server does not support SMTPUTF8"
            )
        options.append("SMTPUTF8")
    encoding = "utf-8" if built.smtputf8 else "ascii"
    await client.mail(built.envelope_from, options=options, encoding=encoding)
    session.stage = _RCPT
    await client.rcpt(built.recipients[0], encoding=encoding)
    session.stage = _DATA
    return await client.data(built.raw), built.message_id


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


# --- a pooled connection: message after message, pipelined when offered ----------------------

_DATA_RATE = 100_000  # bytes per second we allow a message body at the least, on top of timeout
_MAX_REPLY = 32_768  # bytes: a longer reply (or line) is garbage, not SMTP
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_FORBIDDEN_IN_ADDRESS = re.compile(r"[\x00-\x1f\x7f<>]")


@dataclass(frozen=True)
class Reply:
    """One reply from the server; ``text`` joins the lines of a multiline reply with newlines."""

    code: int
    text: str

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 300

    def __str__(self) -> str:
        return _reply_text(self.code, self.text)


@dataclass(frozen=True)
class Envelope:
    """One message to send: envelope addresses and the message bytes (CRLF or LF lines).

    ``smtputf8`` is required when an address is not ASCII (RFC 6531); the data is sent as given
    apart from line endings (normalised to CRLF) and dot-stuffing.
    """

    mail_from: str  # "" is the null reverse-path, for bounces
    recipients: tuple[str, ...]
    data: bytes
    smtputf8: bool = False

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("an envelope needs at least one recipient")
        for address in (self.mail_from, *self.recipients):
            if _FORBIDDEN_IN_ADDRESS.search(address):
                raise ValueError(f"control character or angle bracket in address {address!r}")
            if not self.smtputf8 and not address.isascii():
                raise ValueError(f"non-ASCII address {address!r} needs smtputf8=True")
        if any(not recipient for recipient in self.recipients):
            raise ValueError("empty recipient address")


@dataclass(frozen=True)
class Transaction:
    """What the server answered to one message, as far as the session got.

    ``rcpts`` holds one reply per recipient, in order, for as many as were answered. ``data``
    is the reply to DATA (354 to go on), ``final`` the reply after the message body. With
    ``failure`` the session broke before the transaction ended (timeout, disconnect, garbage);
    the connection is then closed. ``stale`` says the connection was dead before the server
    answered anything of this transaction: it had closed the connection while it sat idle, so
    the message can be sent again on a fresh connection.
    """

    mail: Reply | None = None
    rcpts: tuple[Reply, ...] = ()
    data: Reply | None = None
    final: Reply | None = None
    failure: SmtpError | None = None
    stale: bool = False


class SmtpConnection:
    """An open, authenticated session that sends one message after another.

    Make one with :func:`connect`. After a transaction that did not end cleanly the next one
    starts with RSET. A failure closes the connection (:attr:`usable` turns false): its state
    is unknown, so it is never reused.
    """

    def __init__(
        self, wire: _Wire, session: _Session, *, extensions: frozenset[str], pipelining: bool
    ) -> None:
        self._wire = wire
        self._session = session
        self.extensions = extensions  # lower-case ESMTP keywords from the last EHLO
        self.pipelining = pipelining  # offered by the server, and not turned off
        self.transactions = 0
        self._needs_reset = False

    @property
    def usable(self) -> bool:
        """Open, and in a known state (no failure, no unsolicited reply such as a 421)."""
        return not (self._wire.closed or self._wire.unsolicited)

    @property
    def smtputf8(self) -> bool:
        return "smtputf8" in self.extensions

    async def transact(self, envelope: Envelope) -> Transaction:
        """Send one message; return the replies. SMTP failures come back in the result."""
        if envelope.smtputf8 and not self.smtputf8:
            raise ValueError("the server does not support SMTPUTF8")
        if not self.usable:
            raise RuntimeError("the connection is closed or in an unknown state")
        self.transactions += 1
        progress = _Progress()
        try:
            with _translated_errors(self._session):
                if self.pipelining:
                    await self._pipelined(envelope, progress)
                else:
                    await self._lockstep(envelope, progress)
        except SmtpError as error:
            self.abort()
            stale = progress.answered == 0 and isinstance(
                error.__cause__, SMTPServerDisconnected | ConnectionError
            )
            return progress.result(failure=error, stale=stale)
        except BaseException:  # cancelled, or a bug: the session is in an unknown state
            self.abort()
            raise
        return progress.result()

    async def quit(self, *, timeout: float) -> None:  # noqa: ASYNC109 - one command
        """Say QUIT (waiting at most ``timeout`` for the reply) and close."""
        if self.usable:
            self._session.stage = _QUIT
            with contextlib.suppress(SMTPServerDisconnected, TimeoutError, _MalformedReply):
                self._wire.write(b"QUIT\r\n", replies=1)
                await self._wire.reply(timeout)
        self.abort()

    def abort(self) -> None:
        """Close at once, without QUIT."""
        self._wire.abort()

    # one transaction

    async def _pipelined(self, envelope: Envelope, progress: _Progress) -> None:
        """RFC 2920: [RSET] MAIL, every RCPT and DATA in one write, then the replies in order."""
        mail, rcpts = self._commands(envelope)
        reset = self._needs_reset
        group = [b"RSET\r\n"] if reset else []
        group += [mail, *rcpts, b"DATA\r\n"]
        self._needs_reset = True  # until the transaction ends cleanly
        self._session.stage = _RSET if reset else _MAIL
        self._wire.write(b"".join(group), replies=len(group))
        if reset:
            await self._reset_reply(progress)
        progress.mail = await self._reply(_MAIL, progress)
        for _ in rcpts:
            progress.rcpts.append(await self._reply(_RCPT, progress))
        progress.data = await self._reply(_DATA, progress)
        if progress.data.code != SMTPStatus.start_input:
            return
        if progress.mail.positive and progress.accepted:
            await self._message(envelope.data, progress)
        else:  # RFC 2920 3.1: DATA accepted without a valid recipient: send an empty message
            self._wire.write(b".\r\n", replies=1)
            await self._reply(_DATA, progress)

    async def _lockstep(self, envelope: Envelope, progress: _Progress) -> None:
        """One command at a time, stopping as soon as the transaction cannot go on."""
        mail, rcpts = self._commands(envelope)
        if self._needs_reset:
            self._session.stage = _RSET
            self._wire.write(b"RSET\r\n", replies=1)
            await self._reset_reply(progress)
        self._needs_reset = True  # until the transaction ends cleanly
        progress.mail = await self._command(mail, _MAIL, progress)
        if not progress.mail.positive:
            return
        for rcpt in rcpts:
            progress.rcpts.append(await self._command(rcpt, _RCPT, progress))
        if not progress.accepted:
            return
        progress.data = await self._command(b"DATA\r\n", _DATA, progress)
        if progress.data.code == SMTPStatus.start_input:
            await self._message(envelope.data, progress)

    async def _message(self, data: bytes, progress: _Progress) -> None:
        """The body after 354, and the final reply (with more time for a large message)."""
        self._wire.write(_dot_stuffed(data), replies=1)
        timeout = self._session.timeout
        self._session.timeout = timeout + len(data) / _DATA_RATE
        try:
            progress.final = await self._reply(_DATA, progress)
        finally:
            self._session.timeout = timeout
        self._needs_reset = False  # a final reply, whatever it says, ends the transaction

    async def _reset_reply(self, progress: _Progress) -> None:
        reply = await self._reply(_RSET, progress)
        if not reply.positive:
            raise SMTPResponseException(reply.code, reply.text)

    async def _command(self, line: bytes, stage: _Stage, progress: _Progress) -> Reply:
        self._session.stage = stage
        self._wire.write(line, replies=1)
        return await self._reply(stage, progress)

    async def _reply(self, stage: _Stage, progress: _Progress) -> Reply:
        self._session.stage = stage
        reply = await self._wire.reply(self._session.timeout)
        progress.answered += 1
        return reply

    def _commands(self, envelope: Envelope) -> tuple[bytes, list[bytes]]:
        encoding = "utf-8" if envelope.smtputf8 else "ascii"
        mail = [f"MAIL FROM:<{envelope.mail_from}>"]
        if "size" in self.extensions:
            mail.append(f"SIZE={len(envelope.data)}")
        if "8bitmime" in self.extensions and not envelope.data.isascii():
            mail.append("BODY=8BITMIME")
        if envelope.smtputf8:
            mail.append("SMTPUTF8")
        rcpts = [f"RCPT TO:<{address}>\r\n".encode(encoding) for address in envelope.recipients]
        return (" ".join(mail) + "\r\n").encode(encoding), rcpts


@dataclass
class _Progress:
    """The replies of one transaction so far."""

    mail: Reply | None = None
    rcpts: list[Reply] = field(default_factory=list)
    data: Reply | None = None
    final: Reply | None = None
    answered: int = 0  # replies received, RSET's included

    @property
    def accepted(self) -> bool:
        return any(reply.positive for reply in self.rcpts)

    def result(self, *, failure: SmtpError | None = None, stale: bool = False) -> Transaction:
        return Transaction(
            self.mail, tuple(self.rcpts), self.data, self.final, failure=failure, stale=stale
        )


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA sends it: CRLF lines, leading dots doubled, then the lone dot."""
    crlf = data.count(b"\r\n")
    # the regular expressions only where needed: our own messages are CRLF already
    body = (
        data if data.count(b"\n") == data.count(b"\r") == crlf else _LINE_ENDINGS.sub(b"\r\n", data)
    )
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    if body.startswith(b".") or b"\n." in body:
        body = _LEADING_DOT.sub(b"..", body)
    return body + b".\r\n"


class _MalformedReply(Exception):
    """The server sent something that is not an SMTP reply."""


class _ReplyParser:
    """Cuts the bytes a server sends into replies (RFC 5321 4.2). Pure: no I/O."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []  # the lines so far of a multiline reply
        self._size = 0

    def feed(self, data: bytes) -> list[Reply]:
        """Every reply that ``data`` completes; raises :class:`_MalformedReply` on garbage."""
        self._buffer += data
        replies = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) != -1:
            line = bytes(self._buffer[start:end]).rstrip(b"\r")
            start = end + 1
            if not (line[:3].isdigit() and line[3:4] in (b"", b" ", b"-")):
                raise _MalformedReply(f"not an SMTP reply: {line[:80]!r}")
            self._size += len(line)
            if self._size > _MAX_REPLY:
                raise _MalformedReply(f"reply longer than {_MAX_REPLY} bytes")
            self._lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":
                replies.append(Reply(int(line[:3]), "\n".join(self._lines)))
                self._lines, self._size = [], 0
        del self._buffer[:start]
        if len(self._buffer) > _MAX_REPLY:
            raise _MalformedReply(f"reply longer than {_MAX_REPLY} bytes")
        return replies


class _Wire(asyncio.Protocol):
    """The transport's protocol once a :class:`SmtpConnection` owns it.

    Replies are queued in the order they arrive, however they are split into reads, and are
    handed out one by one by :meth:`reply`; the connection writes through :meth:`write`,
    saying how many replies the written commands owe. A reply nobody asked for (a "421
    closing" on an idle connection) marks the connection :attr:`unsolicited`.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._parser = _ReplyParser()
        self._replies: deque[Reply] = deque()
        self._owed = 0  # replies the server has yet to send for what we wrote
        self._waiter: asyncio.Future[None] | None = None
        self._lost: Exception | None = None  # why no further reply will come
        self.closed = transport.is_closing()
        self.unsolicited = False

    def write(self, data: bytes, *, replies: int) -> None:
        if self.closed or self._lost is not None:
            raise SMTPServerDisconnected("Connection lost")
        self._owed += replies
        self._transport.write(data)

    async def reply(self, timeout: float) -> Reply:  # noqa: ASYNC109 - per reply
        """The next reply; raises TimeoutError, SMTPServerDisconnected or _MalformedReply."""
        if self._replies:  # pipelined replies come together: no timer for those already here
            return self._replies.popleft()
        async with asyncio.timeout(timeout):
            while not self._replies:
                if self._lost is not None:
                    raise self._lost
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        return self._replies.popleft()

    def abort(self) -> None:
        self.closed = True
        self._transport.abort()

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except _MalformedReply as exc:
            self._stop(exc)
            self.abort()
            return
        for reply in replies:
            if self._owed == 0:
                self.unsolicited = True
                continue
            self._owed -= 1
            self._replies.append(reply)
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side as well; connection_lost() follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        lost = SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self._stop(lost)

    def _stop(self, exc: Exception) -> None:
        if self._lost is None:
            self._lost = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


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


def _malformed(exc: _MalformedReply, session: _Session) -> _Failure:
    return _Failure(
        SmtpConnectionError, f"{session.address} sent garbage {_during(session)}: {exc}"
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
    _MalformedReply: _malformed,
    # aiosmtplib: replies
    SMTPAuthenticationError: _login_rejected,
    SMTPSenderRefused: _sender_refused,
    SMTPRecipientRefused: _recipient_refused,
    SMTPRecipientsRefused: _recipients_refused,
    SMTPDataError: _data_refused,
    SMTPResponseException: _reply_refused,
    SMTPException: _smtp_failed,
}
