"""Where a webhook may POST: http(s) URLs whose host resolves to public addresses.

A URL is checked when it is saved (:func:`check_url`, then :func:`resolve`) and again before
every POST (:func:`resolve`): a name may resolve elsewhere later (DNS rebinding), so the POST
goes to the address checked, not to a fresh lookup (see webhooks.sender). Private, loopback,
link-local and other non-global addresses are refused unless the operator allows them
(``MAILGATE_WEBHOOK_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from mailgate.errors import Invalid
from mailgate.i18n import N_

__all__ = ["MAX_URL_LENGTH", "Target", "TargetRefused", "check_url", "resolve"]

MAX_URL_LENGTH: Final = 2048
RESOLVE_TIMEOUT: Final = 5.0

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and (after :func:`resolve`) the address to connect to."""

    url: str
    scheme: str
    host: str  # as written (lower case), no brackets
    port: int
    path: str  # path and query, at least "/"
    address: str | None = None

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if self.port == default else f"{shown}:{self.port}"

    @property
    def pinned_url(self) -> str:
        """The URL with the host replaced by the checked address."""
        assert self.address is not None
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"


class TargetRefused(Exception):
    """The URL's host resolves to no address a webhook may be sent to. ``reason`` is safe to
    store and show (it names the host, never the URL's path or query)."""

    def __init__(self, reason: str, **params: str) -> None:
        self.reason = reason
        self.params = params
        super().__init__(reason.format(**params))


def check_url(value: str, field: str = "url") -> Target:
    """``value`` parsed, or Invalid: not http(s), no host, credentials, spaces, too long."""
    text = value.strip()
    if not text:
        raise Invalid.field(field, N_("This field is required."), "required")
    if len(text) > MAX_URL_LENGTH:
        raise Invalid.field(
            field,
            N_("Must be at most {max_length} characters long."),
            "too_long",
            max_length=MAX_URL_LENGTH,
        )
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text):
        raise Invalid.field(field, N_("A URL may not contain spaces or control characters."))
    try:
        parts = urlsplit(text)
        port = parts.port
        host = (parts.hostname or "").lower()
    except ValueError as exc:
        raise Invalid.field(field, N_("This is not a valid URL.")) from exc
    if parts.scheme not in ("http", "https"):
        raise Invalid.field(field, N_("The URL must start with https:// or http://."))
    if not host:
        raise Invalid.field(field, N_("The URL has no host."))
    if parts.username is not None or parts.password is not None:
        raise Invalid.field(
            field,
            N_(
                "Credentials in the URL are not accepted: requests are signed, verify the "
                "webhook-signature header instead."
            ),
        )
    if parts.fragment:
        raise Invalid.field(field, N_("The URL may not have a #fragment."))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return Target(text, parts.scheme, host, port or default, path)


def _allowed(address: IpAddress, allow_private: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_multicast:
        return False
    return allow_private or address.is_global


async def resolve(target: Target, *, allow_private: bool) -> Target:
    """``target`` with the first address of its host a webhook may be sent to; raises
    :class:`TargetRefused` when there is none (or the name does not resolve)."""
    try:
        literal: IpAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates: list[IpAddress] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM),
                RESOLVE_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            raise TargetRefused(
                N_("The host {host} could not be resolved."), host=target.host
            ) from exc
        candidates = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
            candidates.append(ipaddress.ip_address(text))
    for address in candidates:
        if _allowed(address, allow_private):
            return Target(
                target.url, target.scheme, target.host, target.port, target.path, str(address)
            )
    raise TargetRefused(
        N_(
            "The host {host} resolves to a private, loopback or otherwise non-public address; "
            "webhooks are not sent there unless the operator allows it."
        ),
        host=target.host,
    )
