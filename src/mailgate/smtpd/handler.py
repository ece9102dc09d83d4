"""The relay's aiosmtpd hooks: each checks, calls a service, and returns a reply.

A connection relays for one account: the SMTP user's (AUTH) or, without AUTH, the account
that listed the client's network (IP authentication). Without either, the only mail taken
is for the bounce domain: DSNs and complaint reports, recorded by
:mod:`mailgate.services.bounce_intake`. Mail is answered 250 only once it is committed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from mailgate.errors import Invalid, MailgateError, PayloadTooLarge
from mailgate.i18n import translate
from mailgate.services.bounce_intake import take_report
from mailgate.services.messages import submission_from_smtp
from mailgate.services.smtp_users import SmtpPrincipal, sender_allowed
from mailgate.smtpd import replies
from mailgate.smtpd.access import RelayAccess
from mailgate.validation import check_email

if TYPE_CHECKING:
    from mailgate.node import Node
    from mailgate.services.verp import Verp

__all__ = ["RelayEnvelope", "RelayHandler", "RelaySession", "peer_ip"]

log = structlog.get_logger(__name__)

MAX_AUTH_FAILURES: Final = 3  # per connection, then it is closed
HELO_MAX: Final = 100


class RelaySession(Session):
    """aiosmtpd's session, plus who is relaying on this connection."""

    def __init__(self, loop: Any) -> None:
        super().__init__(loop)
        self.principal: SmtpPrincipal | None = None  # after AUTH
        self.network_account: int | None = None  # by IP authentication, looked up at MAIL
        self.network_checked = False
        self.auth_failures = 0
        self.messages = 0


class RelayEnvelope(Envelope):
    """aiosmtpd's envelope, plus the account it is for and whether it carries reports."""

    def __init__(self) -> None:
        super().__init__()
        self.account_id: int | None = None
        self.reports: bool | None = None  # None until the first RCPT says which kind


@dataclass
class RelayHandler:
    node: Node
    access: RelayAccess
    hostname: str
    verp: Verp | None = None

    async def handle_EHLO(
        self,
        server: SMTP,
        session: RelaySession,
        envelope: RelayEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd reads commands in order from its stream, so pipelined ones (RFC 2920)
        are answered correctly; saying so saves clients round trips. The lines go out in one
        write."""
        session.host_name = hostname
        return ["\r\n".join([*responses[:-1], "250-PIPELINING", responses[-1]])]

    # AUTH: aiosmtpd's built-in PLAIN and LOGIN call a synchronous authenticator; these do
    # the same exchange and check the password without blocking the loop.

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        blob: object = await server.challenge_auth("") if len(args) == 1 else _b64(args[1])
        if not isinstance(blob, bytes):
            return AuthResult(success=False, handled=blob is MISSING, message=replies.AUTH_SYNTAX)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False, message=replies.AUTH_SYNTAX)
        return await self._login(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        username: object = (
            await server.challenge_auth(server.AuthLoginUsernameChallenge)
            if len(args) == 1
            else _b64(args[1])
        )
        if not isinstance(username, bytes):
            return AuthResult(
                success=False, handled=username is MISSING, message=replies.AUTH_SYNTAX
            )
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._login(server, username, password)

    async def _login(self, server: SMTP, username: bytes, password: bytes) -> AuthResult:
        session = server.session
        assert isinstance(session, RelaySession)
        ip = peer_ip(session)
        if not await self.access.may_try_login(ip):
            return AuthResult(success=False, handled=False, message=replies.LOGINS_LIMITED)
        try:
            principal = await self.access.login(ip, username.decode(), password.decode())
        except UnicodeDecodeError:
            principal = None
        if principal is not None:
            session.principal = principal
            return AuthResult(success=True, auth_data=principal, message=replies.AUTH_OK)
        session.auth_failures += 1
        log.info("smtp login failed", peer=ip, failures=session.auth_failures)
        if session.auth_failures >= MAX_AUTH_FAILURES:
            _hang_up_after_reply(server)
            return AuthResult(success=False, handled=False, message=replies.TOO_MANY_FAILURES)
        return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: RelaySession,
        envelope: RelayEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        settings = self.node.settings
        if session.messages >= settings.smtp_max_messages_per_connection:
            _hang_up_after_reply(server)
            return replies.TOO_MANY_MESSAGES
        if not address.isascii() and "SMTPUTF8" not in mail_options:
            return replies.NEEDS_SMTPUTF8
        principal = session.principal
        if principal is not None:
            if address != "<>" and not sender_allowed(principal, address):
                return replies.SENDER_REFUSED.format(address=_printable(address))
            if not await self.access.may_send(principal):
                return replies.SENDING_LIMITED
            envelope.account_id = principal.account_id
        else:
            if not session.network_checked:
                session.network_account = await self.access.network_account(peer_ip(session))
                session.network_checked = True
            envelope.account_id = session.network_account
            if envelope.account_id is None and self.verp is None:
                return replies.AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: RelaySession,
        envelope: RelayEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not address.isascii() and not envelope.smtp_utf8:
            return replies.NEEDS_SMTPUTF8
        report = self.verp is not None and _domain(address) == self.verp.domain
        if envelope.reports is not None and envelope.reports != report:
            return replies.SEPARATE_REPORTS
        if not report:
            if envelope.account_id is None:
                return replies.RELAY_DENIED
            if len(envelope.rcpt_tos) >= self.node.settings.smtp_max_recipients:
                return replies.TOO_MANY_RECIPIENTS
            try:
                address = check_email(address)
            except ValueError:
                return replies.BAD_ADDRESS.format(address=_printable(address))
        elif len(envelope.rcpt_tos) >= self.node.settings.smtp_max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        envelope.reports = report
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def handle_DATA(
        self, server: SMTP, session: RelaySession, envelope: RelayEnvelope
    ) -> str:
        session.messages += 1
        raw: bytes = envelope.original_content or b""
        if envelope.reports:
            return await self._take_report(raw, envelope)
        assert envelope.account_id is not None  # RCPT refused mail for no account
        settings = self.node.settings
        try:
            submission = submission_from_smtp(
                raw,
                settings=settings,
                mail_from=envelope.mail_from or "<>",
                recipients=envelope.rcpt_tos,
                trace=self._received(session, envelope),
            )
        except PayloadTooLarge:
            return replies.TOO_BIG.format(limit=settings.message_max_bytes)
        except Invalid as exc:
            return replies.BAD_MESSAGE.format(reason=_reason(exc))
        header_from = parseaddr(submission.from_header)[1]
        if session.principal is not None and not sender_allowed(session.principal, header_from):
            return replies.FROM_REFUSED.format(address=_printable(header_from))
        try:
            [accepted] = await self.node.accepter.accept(envelope.account_id, [submission])
        except Invalid as exc:
            return replies.BAD_MESSAGE.format(reason=_reason(exc))
        except Exception as exc:  # nothing was committed: the client keeps the message
            log.error("relay could not queue a message", error_type=type(exc).__name__)
            return replies.NOT_QUEUED
        return replies.QUEUED.format(id=accepted.message.public_id)

    async def _take_report(self, raw: bytes, envelope: RelayEnvelope) -> str:
        assert self.verp is not None
        try:
            async with self.node.database.session() as db:
                result = await take_report(
                    session=db, raw=raw, recipients=envelope.rcpt_tos, verp=self.verp
                )
        except Exception as exc:
            log.error("relay could not record a report", error_type=type(exc).__name__)
            return replies.NOT_QUEUED
        log.info("report received", message=result.message_id, recorded=len(result.recorded))
        return replies.REPORT_TAKEN

    async def handle_exception(self, error: Exception) -> str:
        """A bug, never the client's input: aiosmtpd would echo the exception's text."""
        log.error("relay hook failed", error_type=type(error).__name__, exc_info=error)
        return replies.NOT_QUEUED

    def _received(self, session: RelaySession, envelope: RelayEnvelope) -> str:
        """The trace line (RFC 5321 4.4), protocol named as RFC 3848 does."""
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        if session.ssl is not None:
            protocol += "S"
        if session.principal is not None:
            protocol += "A"
        helo = _printable(session.host_name or "unknown")[:HELO_MAX]
        ip = peer_ip(session)
        literal = f"IPv6:{ip}" if ":" in ip else ip  # RFC 5321 4.1.3
        recipient = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        return (
            f"Received: from {helo} ([{literal}])\r\n"
            f"\tby {self.hostname} (Mailgate) with {protocol}{recipient};\r\n"
            f"\t{format_datetime(datetime.now(UTC))}"
        )


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _hang_up_after_reply(server: SMTP) -> None:
    """Close the connection once the reply being returned is written (close() flushes)."""
    transport = server.transport
    if transport is not None:
        server.loop.call_soon(transport.close)


def peer_ip(session: Session | None) -> str:
    """The client's address, as aiosmtpd's session records it."""
    peer = session.peer if session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) else "unknown"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].rstrip(".").lower()


def _printable(text: str) -> str:
    """Safe to echo in a reply or a header: printable ASCII only."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:320]


def _reason(exc: MailgateError) -> str:
    if isinstance(exc, Invalid) and exc.issues:
        issue = exc.issues[0]
        return _printable(translate(issue.message, "en", dict(issue.params)))
    return _printable(translate(exc.message, "en", dict(exc.params)))
