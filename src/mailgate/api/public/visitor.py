"""Who followed a link: user agent, and the client's IP, believing ``X-Forwarded-For`` only
from the reverse proxies the operator named (``MAILGATE_TRUSTED_PROXIES``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from mailgate.services.tracking import Visitor, looks_automated

__all__ = ["client_ip", "visitor_of"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]
) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str | None:
    """The peer, or, when the peer is a trusted proxy, the right-most address of
    X-Forwarded-For that is not a trusted proxy (the left part is the client's to write)."""
    address = _address(peer) if peer else None
    if address is None:
        return peer[:45] if peer else None
    if not proxies or not _trusted(address, proxies):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:
            break  # garbage from here on: the last proxy's peer is all we know
        address = found
        if not _trusted(found, proxies):
            break
    return str(address)


def visitor_of(request: Request, proxies: Sequence[Network]) -> Visitor:
    user_agent = request.headers.get("user-agent")
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.getlist("x-forwarded-for"), proxies)
    return Visitor(user_agent=user_agent, client_ip=ip, automated=looks_automated(user_agent))
