"""MailSage field names <-> domain. Pure functions and lookup tables.

MailSage has one switch, ``use_tls``, where the domain has three securities. The port
decides which TLS is meant, as every MailSage-style client assumes: 465 is implicit TLS
(SMTPS), any other port upgrades with STARTTLS. ``use_tls: false`` is plaintext.
"""

from __future__ import annotations

from typing import Any, Final

from mailgate.api.fields import iso
from mailgate.api.mailsage.schemas import ConfigCreate, ConfigUpdate
from mailgate.domain import Security
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services.providers import ProviderChanges
from mailgate.store.models import Provider

IMPLICIT_TLS_PORT: Final = 465
# Domain field -> request field, for the fields whose names differ.
DOMAIN_TO_REQUEST: Final = {"security": "use_tls"}


def security_for(*, use_tls: bool, port: int) -> Security:
    if not use_tls:
        return Security.NONE
    return Security.TLS if port == IMPLICIT_TLS_PORT else Security.STARTTLS


def uses_tls(security: str) -> bool:
    return Security(security) is not Security.NONE


def to_changes(body: ConfigCreate | ConfigUpdate, *, current: Provider | None) -> ProviderChanges:
    """A create (``current`` None: every field) or an update (only the fields sent).

    On an update the security is derived again whenever ``use_tls`` or ``port`` is sent,
    from the sent value or else the stored one; otherwise the stored security is kept.
    """
    nulls = sorted(n for n in body.model_fields_set if getattr(body, n) is None)
    if nulls:
        raise Invalid([Issue(name, N_("Must not be null."), "invalid_type") for name in nulls])
    sent = set(type(body).model_fields) if current is None else set(body.model_fields_set)
    values: dict[str, Any] = {n: getattr(body, n) for n in sent - {"use_tls"}}
    if current is None or sent & {"use_tls", "port"}:
        use_tls, port = body.use_tls, body.port
        if current is not None:
            use_tls = uses_tls(current.security) if use_tls is None else use_tls
            port = current.port if port is None else port
        assert use_tls is not None and port is not None  # a create's model requires both
        values["security"] = security_for(use_tls=use_tls, port=port)
    return ProviderChanges(**values)


def config_out(provider: Provider) -> dict[str, Any]:
    """A provider as a MailSage configuration. The password never leaves."""
    return {
        "id": provider.id,
        "name": provider.name,
        "host": provider.host,
        "port": provider.port,
        "username": provider.username,
        "from_email": provider.from_email,
        "is_default": provider.is_default,
        "use_tls": uses_tls(provider.security),
        "created_at": iso(provider.created_at),
        "updated_at": iso(provider.updated_at),
    }


def page_meta(*, page: int, per_page: int, total: int) -> dict[str, int]:
    """``total_pages`` is at least 1: an empty list is one empty page."""
    return {
        "current_page": page,
        "total_pages": max(1, -(-total // per_page)),
        "total_items": total,
    }
