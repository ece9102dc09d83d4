"""Pure checks for values every surface accepts: host names, email addresses, domains,
IP networks.

Each returns the normalised value or raises ``ValueError`` whose text is an English msgid
(translated by the surface). Surfaces use them inside pydantic validators, so errors carry
the surface's own field names; services use them again for callers that skip a surface.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Final

from email_validator import EmailNotValidError, validate_email

from mailgate.i18n import N_

__all__ = [
    "MIN_PREFIX_LENGTH",
    "PLAIN_ADDRESS",
    "check_email",
    "check_hostname",
    "check_network",
    "check_no_control_chars",
    "check_sender_rule",
]

# An address written plainly: a dot-atom local part and an ASCII domain of two or more
# labels. Fast paths use it to skip a full parser; anything else goes the slow way.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_ADDRESS: Final = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_hostname(value: str) -> str:
    """A DNS host name or an IP literal (``[::1]`` or bare)."""
    candidate = value.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    name = candidate.rstrip(".")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(N_("Must be a valid host name.")) from exc
    labels = ascii_name.split(".")
    if not name or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(N_("Must be a valid host name."))
    return name.lower()


def check_email(value: str) -> str:
    """A syntactically valid address (no DNS look-up), normalised."""
    normalized = _normalized_email(value)
    if normalized is None:
        raise ValueError(N_("Must be a valid email address."))
    return normalized


@functools.lru_cache(maxsize=8192)
def _normalized_email(value: str) -> str | None:
    # Cached: a sender's and its recipients' addresses recur from message to message, and
    # email_validator's checks cost tens of microseconds each.
    if _CONTROL.search(value):
        return None
    try:
        result = validate_email(
            value,
            check_deliverability=False,
            allow_smtputf8=True,
            globally_deliverable=False,  # intranet and test domains are fine for a gateway
            test_environment=True,
        )
    except EmailNotValidError:
        return None
    return str(result.normalized)


def check_no_control_chars(value: str) -> str:
    """Text that ends up in a header or a log line: no CR, LF or other control characters."""
    if _CONTROL.search(value):
        raise ValueError(N_("Must not contain line breaks or control characters."))
    return value


# The widest network that may be listed for IP authentication, per IP version: anything wider
# is an open relay for the account in all but name.
MIN_PREFIX_LENGTH: Final = {4: 8, 6: 32}
_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


def check_network(value: str) -> str:
    """An IP address or a network in CIDR notation, normalised: ``192.0.2.7`` ->
    ``192.0.2.7/32``, ``2001:DB8::/32`` -> ``2001:db8::/32``, IPv4-mapped IPv6 -> IPv4.
    Host bits set (``10.0.0.5/24``) are refused rather than silently widened."""
    text = value.strip(" ")
    if not text or _CONTROL.search(text):
        raise ValueError(N_("Must be an IP address or a network in CIDR notation."))
    try:
        network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(text)
    except ValueError as exc:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(N_("Must be an IP address or a network in CIDR notation.")) from exc
        raise ValueError(
            N_("Has bits set after the prefix length: give the network's first address.")
        ) from exc
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    if network.prefixlen < MIN_PREFIX_LENGTH[network.version]:
        raise ValueError(N_("Networks wider than /8 (IPv4) or /32 (IPv6) are refused."))
    if network.network_address.is_unspecified or network.is_multicast:
        raise ValueError(N_("Must be a unicast address or network."))
    return str(network)


def check_sender_rule(value: str) -> str:
    """An allowed sender: an address (``app@example.com``) or a whole domain (``example.com``,
    also written ``@example.com``), normalised."""
    text = value.strip()
    if "@" in text.lstrip("@"):
        return check_email(text)
    domain = text.removeprefix("@")
    try:
        ipaddress.ip_address(domain.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError(N_("Must be an email address or a domain."))
    try:
        return check_hostname(domain)
    except ValueError as exc:
        raise ValueError(N_("Must be an email address or a domain.")) from exc
