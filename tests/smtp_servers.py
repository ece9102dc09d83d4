"""Real upstream SMTP servers for tests, as pytest fixtures (``pytest_plugins = ["smtp_servers"]``).

Each server is an aiosmtpd ``Controller`` with its own thread and event loop (the code under
test runs on pytest's loop), listening on a pre-bound socket on 127.0.0.1 with a free port.
TLS uses a throwaway trustme CA: pass ``tls_ca_bundle`` as the client's CA bundle.

    smtp_plain          plaintext, no AUTH
    smtp_starttls       STARTTLS offered and required; AUTH PLAIN/LOGIN required
    smtp_implicit_tls   TLS from the first byte; AUTH PLAIN/LOGIN required
    smtp_auth_plaintext plaintext; AUTH PLAIN/LOGIN offered without TLS
    smtp_rejecting      plaintext, no AUTH; RCPT "*reject*" -> 550, "*defer*" -> 451
    smtp_scripted       like smtp_rejecting, plus failures on cue (see the fixture); runs each
                        test twice: without and with PIPELINING advertised
    smtp_ascii_only     plaintext, no AUTH, no SMTPUTF8
    refused_port        a 127.0.0.1 port nothing listens on
    stalled_server      (host, port) of a TCP server that accepts and never greets

Every server counts its connections (``connections``, ``open_connections``,
``peak_connections``) and keeps each chunk of bytes it read (``chunks``), which shows whether
a client pipelined its commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "HOST",
    "SMTP_PASSWORD",
    "SMTP_USER",
    "AuthAttempt",
    "ReceivedMessage",
    "SmtpServer",
]

HOST = "127.0.0.1"
SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-pass"
SERVER_NAME = "smtp.test"

REJECTED_REPLY = "550 5.1.1 User unknown"
DEFERRED_REPLY = "451 4.3.0 Try again later"
AUTH_REQUIRED_REPLY = "530 5.7.0 Authentication required"
SENDER_REJECTED_REPLY = "553 5.7.1 Sender address rejected"
REFUSED_MESSAGE_REPLY = "554 5.6.0 Message refused"
DEFERRED_MESSAGE_REPLY = "452 4.3.1 Insufficient storage"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the upstream received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    parsed: EmailMessage  # parsed with policy.default: headers decoded, get_content() works
    tls: bool  # the session was encrypted (implicit TLS or after STARTTLS)
    login: str | None  # the AUTH login name, None when not authenticated


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str  # "PLAIN" / "LOGIN"
    login: str
    success: bool  # the password is deliberately not recorded


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[ReceivedMessage] = field(default_factory=list)
    auth_attempts: list[AuthAttempt] = field(default_factory=list)
    connections: int = 0  # accepted so far
    open_connections: int = 0  # open right now (as the server sees it)
    peak_connections: int = 0  # the most open at once
    chunks: list[bytes] = field(default_factory=list)  # every read, in order
    pipelining: bool = False  # PIPELINING advertised (smtp_scripted)
    hang_up_on_next_mail: bool = False  # smtp_scripted: on cue, drop a connection at MAIL


class _RecordingHandler:
    """aiosmtpd handler: records AUTH attempts and every accepted message on ``server``.

    ``require_auth`` refuses MAIL before AUTH. It stands in for aiosmtpd's ``auth_required``
    on the implicit-TLS server: aiosmtpd only counts STARTTLS as TLS, so that server needs
    ``auth_require_tls=False``, and ``auth_required`` with that emits a UserWarning.
    """

    def __init__(self, server: SmtpServer, *, require_auth: bool = False) -> None:
        self.server = server
        self.require_auth = require_auth

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.require_auth and not session.authenticated:
            return AUTH_REQUIRED_REPLY
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        auth = session.auth_data  # the LoginPassword of a successful AUTH
        self.server.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                parsed=email.message_from_bytes(data, policy=email.policy.default),
                tls=_is_tls(smtp, session),
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return f"250 2.0.0 OK queued as {len(self.server.messages)}"

    def authenticate(
        self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = auth_data.login.decode()
        ok = login == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        self.server.auth_attempts.append(AuthAttempt(mechanism, login, ok))
        # handled=False: aiosmtpd itself answers 535 on failure
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _RejectingHandler(_RecordingHandler):
    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if "reject" in address:
            return REJECTED_REPLY
        if "defer" in address:
            return DEFERRED_REPLY
        envelope.rcpt_tos.append(address)
        return "250 OK"


class _ScriptedHandler(_RejectingHandler):
    """Failures on cue, for smtp_scripted; "stall" and "hangup" in an address are cues."""

    async def handle_EHLO(
        self, smtp: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.server.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.server.hang_up_on_next_mail:
            self.server.hang_up_on_next_mail = False
            return await _hang_up(smtp)
        if "reject" in address:
            return SENDER_REJECTED_REPLY
        return await super().handle_MAIL(smtp, session, envelope, address, options)

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if "stall" in address:
            await _forever()
        return await super().handle_RCPT(smtp, session, envelope, address, options)

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if any("hangup" in rcpt for rcpt in envelope.rcpt_tos):
            return await _hang_up(smtp)
        if b"X-Refuse: permanent" in content:
            return REFUSED_MESSAGE_REPLY
        if b"X-Refuse: temporary" in content:
            return DEFERRED_MESSAGE_REPLY
        return await super().handle_DATA(smtp, session, envelope)


async def _hang_up(smtp: SMTP) -> str:
    """Drop the connection without a reply (what a client sees when a server dies)."""
    assert isinstance(smtp.transport, asyncio.Transport)
    smtp.transport.abort()
    return await _forever()  # aiosmtpd cancels the session once it sees the connection lost


async def _forever() -> str:
    await asyncio.get_running_loop().create_future()  # cancelled when the client hangs up
    raise AssertionError("unreachable")


class _CountingSMTP(SMTP):
    """aiosmtpd's server session, counting connections and keeping what it reads."""

    @property
    def _server(self) -> SmtpServer:
        server: SmtpServer = self.event_handler.server
        return server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the second call, after STARTTLS
            server = self._server
            server.connections += 1
            server.open_connections += 1
            server.peak_connections = max(server.peak_connections, server.open_connections)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._server.open_connections -= 1
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        self._server.chunks.append(data)
        super().data_received(data)


def _is_tls(smtp: SMTP, session: Session) -> bool:
    # session.ssl is only filled in after STARTTLS; the transport knows about implicit TLS
    transport = smtp.transport
    return session.ssl is not None or (
        transport is not None and transport.get_extra_info("ssl_object") is not None
    )


class _BoundController(Controller):
    """A Controller serving on a socket bound (port 0) before start: no free-port races.

    ``stop()`` first lets every session end (the client has usually hung up already and the
    server thread only has to notice), then aborts stragglers, so no transport or socket is
    left open for the garbage collector to warn about when the loop is torn down.
    """

    def __init__(self, handler: Any, *, listener: socket.socket, **kwargs: Any) -> None:
        super().__init__(handler, hostname=HOST, port=listener.getsockname()[1], **kwargs)
        self._listener = listener
        self._sessions: list[SMTP] = []

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listener, ssl=self.ssl_context
        )

    def factory(self) -> SMTP:
        smtpd = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        self._sessions.append(smtpd)
        return smtpd

    async def _end_sessions(self, grace: float) -> None:
        deadline = self.loop.time() + grace
        # aiosmtpd exposes no "connection closed" event: poll its transport attribute
        while self.loop.time() < deadline and any(s.transport is not None for s in self._sessions):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        for smtpd in self._sessions:
            if isinstance(smtpd.transport, asyncio.Transport):
                smtpd.transport.abort()
        for _ in range(5):  # let connection_lost() callbacks close the sockets
            await asyncio.sleep(0)

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None and self.loop.is_running():
            ending = asyncio.run_coroutine_threadsafe(self._end_sessions(grace=2.0), self.loop)
            ending.result(timeout=10)
        super().stop(no_assert=no_assert)


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen()
    return sock


@contextlib.contextmanager
def _serving(
    handler_class: type[_RecordingHandler] = _RecordingHandler,
    *,
    require_auth: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    **smtp_options: Any,
) -> Iterator[SmtpServer]:
    """Run an aiosmtpd server in its own thread for the length of the block."""
    listener = _listener()
    server = SmtpServer(HOST, listener.getsockname()[1])
    handler = handler_class(server, require_auth=require_auth)
    controller = _BoundController(
        handler,
        listener=listener,
        ssl_context=ssl_context,  # implicit TLS; STARTTLS takes tls_context in smtp_options
        server_hostname=SERVER_NAME,  # else aiosmtpd asks socket.getfqdn()
        authenticator=handler.authenticate,
        **smtp_options,
    )
    try:
        controller.start()
        _forget_the_trigger_connection(server)
        yield server
    finally:
        controller.stop(no_assert=True)
        listener.close()  # already closed by the server unless start() failed


def _forget_the_trigger_connection(server: SmtpServer) -> None:
    """Controller.start() connects once to make sure the server is up: don't count that one."""
    deadline = time.monotonic() + 10
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.005)
    server.connections = server.peak_connections = 0
    server.chunks.clear()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_ca_bundle(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PEM file of the test CA: the client's ``ca_bundle``."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def tls_server_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """Server side: a certificate for "localhost" and "127.0.0.1" signed by ``tls_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def smtp_plain() -> Iterator[SmtpServer]:
    """Plaintext, no STARTTLS, no AUTH: accepts any mail."""
    with _serving() as server:
        yield server


@pytest.fixture
def smtp_starttls(tls_server_context: ssl.SSLContext) -> Iterator[SmtpServer]:
    """STARTTLS offered and required; then AUTH PLAIN/LOGIN (SMTP_USER/SMTP_PASSWORD) required."""
    with _serving(
        tls_context=tls_server_context, require_starttls=True, auth_required=True
    ) as server:
        yield server


@pytest.fixture
def smtp_implicit_tls(tls_server_context: ssl.SSLContext) -> Iterator[SmtpServer]:
    """TLS from the first byte (SMTPS); AUTH PLAIN/LOGIN required."""
    with _serving(
        ssl_context=tls_server_context, require_auth=True, auth_require_tls=False
    ) as server:
        yield server


@pytest.fixture
def smtp_auth_plaintext() -> Iterator[SmtpServer]:
    """Plaintext with AUTH PLAIN/LOGIN offered (not required); a wrong password gets 535."""
    with _serving(auth_require_tls=False) as server:
        yield server


@pytest.fixture
def smtp_rejecting() -> Iterator[SmtpServer]:
    """Plaintext, no AUTH. RCPT with "reject" in it -> 550 5.1.1, with "defer" -> 451 4.3.0."""
    with _serving(_RejectingHandler) as server:
        yield server


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelining"])
def smtp_scripted(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """Plaintext, no AUTH; PIPELINING advertised in the "pipelining" run. Cues:

    MAIL "*reject*" -> 553; RCPT "*reject*" -> 550, "*defer*" -> 451, "*stall*" -> never answered;
    a message to a "*hangup*" recipient -> connection dropped after the message, unanswered;
    a header "X-Refuse: permanent" / "X-Refuse: temporary" -> 554 / 452 after the message;
    ``server.hang_up_on_next_mail = True`` -> the next MAIL drops its connection, unanswered
    (as a server that closed an idle connection looks to a client that sends on it).
    """
    with _serving(_ScriptedHandler) as server:
        server.pipelining = request.param
        yield server


@pytest.fixture
def smtp_ascii_only() -> Iterator[SmtpServer]:
    """Plaintext, no AUTH, and no SMTPUTF8: non-ASCII addresses cannot be delivered here."""
    with _serving(enable_SMTPUTF8=False) as server:
        yield server


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def stalled_server() -> Iterator[tuple[str, int]]:
    """(host, port) of a TCP server that accepts connections and never sends a greeting."""
    listener = _listener()
    listener.settimeout(0.05)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def accept_until_stopped() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept_until_stopped, name="stalled-smtp", daemon=True)
    thread.start()
    try:
        yield HOST, listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
