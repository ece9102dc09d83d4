"""The relay listener: aiosmtpd's protocol on the node's own event loop.

One port speaks plain SMTP with STARTTLS (``smtp_port``), another, optionally, implicit TLS
(``smtp_tls_port``). Connections are counted per process, in all and per client address.
With several ``serve`` processes each binds the same ports (``SO_REUSEPORT``) and the
kernel spreads connections among them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiosmtpd.smtp import SMTP

from mailgate.config import Settings
from mailgate.services.verp import Verp
from mailgate.smtpd import replies
from mailgate.smtpd.access import RelayAccess
from mailgate.smtpd.handler import RelayEnvelope, RelayHandler, RelaySession, peer_ip
from mailgate.smtpd.tls import server_context
from mailgate.validation import PLAIN_ADDRESS

if TYPE_CHECKING:
    from mailgate.node import Node

__all__ = ["Relay", "default_hostname", "start_relay"]

log = structlog.get_logger(__name__)

# Per connection. Commands not named here may come as often as a long session of mail needs.
COMMAND_CALL_LIMIT: Final = {
    "AUTH": 10,
    "EHLO": 10,
    "HELO": 10,
    "STARTTLS": 2,
    "HELP": 10,
    "VRFY": 10,
    "NOOP": 1000,
    "*": 10_000_000,
}


_PLAIN_PATH: Final = re.compile(rf"<({PLAIN_ADDRESS})>(?: +(.*))?", re.DOTALL)


@dataclass
class _Gate:
    """Open connections of this process, in all and per client address."""

    settings: Settings
    total: int = 0
    per_ip: Counter[str] = field(default_factory=Counter)

    def admit(self, ip: str) -> str | None:
        """None, and the connection counted; or the reply that refuses it."""
        if self.total >= self.settings.smtp_max_connections:
            return replies.FULL
        if self.per_ip[ip] >= self.settings.smtp_max_connections_per_ip:
            return replies.BUSY
        self.total += 1
        self.per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]


class RelaySMTP(SMTP):
    def __init__(
        self,
        handler: RelayHandler,
        gate: _Gate,
        open_: set[RelaySMTP],
        *,
        implicit_tls: bool,
        **options: Any,
    ) -> None:
        super().__init__(handler, **options)
        self._gate = gate
        self._open = open_
        self._implicit_tls = implicit_tls
        self._ip: str | None = None  # set once admitted
        self._refusal: str | None = None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The path of MAIL FROM / RCPT TO and what follows it. Most are written plainly
        (``<a@b.c> SIZE=...``); aiosmtpd's own parser, slow but complete, reads the rest."""
        match = _PLAIN_PATH.fullmatch(arg)
        if match is not None:
            return match.group(1), match.group(2) or ""
        return super()._getaddr(arg)

    def _create_session(self) -> RelaySession:
        return RelaySession(self.loop)

    def _create_envelope(self) -> RelayEnvelope:
        return RelayEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None  # not the second call, after STARTTLS
        super().connection_made(transport)
        if not first:
            return
        ip = peer_ip(self.session)
        self._refusal = self._gate.admit(ip)
        if self._refusal is None:
            self._ip = ip
            self._open.add(self)
        if self._implicit_tls and self.session is not None:  # aiosmtpd knows only STARTTLS
            self.session.ssl = {"ssl_object": transport.get_extra_info("ssl_object")}

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self._ip is not None:
            self._gate.release(self._ip)
            self._ip = None
            self._open.discard(self)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            await self.push(self._refusal)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


@dataclass
class Relay:
    servers: list[asyncio.Server]
    connections: set[RelaySMTP]

    @property
    def ports(self) -> list[int]:
        return [int(s.sockets[0].getsockname()[1]) for s in self.servers if s.sockets]

    async def close(self) -> None:
        """Stop listening and end every conversation (a message not yet answered 250 is
        still the client's to send again)."""
        for server in self.servers:
            server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        for server in self.servers:
            await server.wait_closed()


async def start_relay(node: Node) -> Relay:
    settings = node.settings
    # aiosmtpd logs every command at INFO and a deprecation WARNING on every AUTH; ours are
    # the relay's log lines.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    hostname = default_hostname(settings)
    context = await asyncio.to_thread(server_context, settings, hostname)
    verp = Verp(settings.secret_keys(), settings.bounce_domain) if settings.bounce_domain else None
    handler = RelayHandler(
        node=node,
        access=RelayAccess(node.database, node.rate_limiter, settings.smtp_auth_cache_seconds),
        hostname=hostname,
        verp=verp,
    )
    gate = _Gate(settings)
    connections: set[RelaySMTP] = set()
    loop = asyncio.get_running_loop()

    def protocol(implicit_tls: bool) -> RelaySMTP:
        return RelaySMTP(
            handler,
            gate,
            connections,
            implicit_tls=implicit_tls,
            hostname=hostname,
            ident="Mailgate",
            data_size_limit=settings.message_max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=None if implicit_tls else context,
            timeout=settings.smtp_idle_timeout,
            auth_require_tls=not (implicit_tls or settings.smtp_allow_plaintext_auth),
            command_call_limit=COMMAND_CALL_LIMIT,
            loop=loop,
        )

    shared = settings.effective_processes > 1  # every process binds the same port
    servers = [
        await loop.create_server(
            lambda: protocol(False), settings.smtp_host, settings.smtp_port, reuse_port=shared
        )
    ]
    if settings.smtp_tls_port:
        servers.append(
            await loop.create_server(
                lambda: protocol(True),
                settings.smtp_host,
                settings.smtp_tls_port,
                ssl=context,
                reuse_port=shared,
            )
        )
    relay = Relay(servers, connections)
    log.info("relay listening", host=settings.smtp_host, ports=relay.ports)
    return relay


def default_hostname(settings: Settings) -> str:
    """The relay's name: in its greeting, its certificate and its Received lines."""
    return settings.smtp_hostname or settings.smtp_helo_name or socket.getfqdn() or "localhost"
