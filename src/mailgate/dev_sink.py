"""``mailgate dev-sink``: a local SMTP server that accepts everything and prints it.

Point a provider at it (host 127.0.0.1, port 2526, security none, any credentials) to try
the whole path on one machine. Never use it as a real upstream: it keeps nothing.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from rich.console import Console

__all__ = ["SinkHandler", "serve_sink"]


class SinkHandler:
    """Prints a summary (or the whole message) of every mail it receives."""

    def __init__(self, console: Console, *, show_body: bool = False) -> None:
        self.console = console
        self.show_body = show_body
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        number = next(self.counter)
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        peer = session.peer[0] if isinstance(session.peer, tuple) else session.peer
        self.console.rule(f"message {number} from {peer}")
        self.console.print(f"[bold]MAIL FROM[/bold] {envelope.mail_from}", highlight=False)
        self.console.print(
            f"[bold]RCPT TO[/bold]   {', '.join(envelope.rcpt_tos)}", highlight=False
        )
        self.console.print(f"[bold]Subject[/bold]   {parsed.get('Subject', '')}", highlight=False)
        self.console.print(f"[bold]Size[/bold]      {len(raw)} bytes", highlight=False)
        if self.show_body:
            self.console.print(raw.decode("utf-8", "replace"), highlight=False, markup=False)
        return f"250 2.0.0 OK: received as message {number}"


def _accept_any(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    # A sink: any user name and password will do, so providers with AUTH can point here.
    login = auth_data.login if isinstance(auth_data, LoginPassword) else None
    return AuthResult(success=True, auth_data=login)


async def serve_sink(host: str, port: int, *, show_body: bool, console: Console) -> None:
    handler = SinkHandler(console, show_body=show_body)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="mailgate-dev-sink",
            authenticator=_accept_any,
            auth_require_tls=False,
            enable_SMTPUTF8=True,
        ),
        host=host,
        port=port,
    )
    console.print(f"dev-sink listening on {host}:{port} (Ctrl-C to stop)")
    async with server:
        await server.serve_forever()
