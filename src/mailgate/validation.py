"""Pure checks for values every surface accepts: host names, email addresses, domains.

Each returns the normalised value or raises ``ValueError`` whose text is an English msgid
(translated by the surface). Surfaces use them inside pydantic validators, so errors carry
the surface's own field names; services use them again for callers that skip a surface.
"""

from __future__ import annotations

import ipaddress
import re

from email_validator import EmailNotValidError, validate_email

from mailgate.i18n import N_

__all__ = ["check_email", "check_hostname", "check_no_control_chars"]

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
    if _CONTROL.search(value):
        raise ValueError(N_("Must be a valid email address."))
    try:
        result = validate_email(
            value,
            check_deliverability=False,
            allow_smtputf8=True,
            globally_deliverable=False,  # intranet and test domains are fine for a gateway
            test_environment=True,
        )
    except EmailNotValidError as exc:
        raise ValueError(N_("Must be a valid email address.")) from exc
    return result.normalized


def check_no_control_chars(value: str) -> str:
    """Text that ends up in a header or a log line: no CR, LF or other control characters."""
    if _CONTROL.search(value):
        raise ValueError(N_("Must not contain line breaks or control characters."))
    return value
