"""Back Office field names <-> domain. Pure functions and lookup tables.

``encryption`` follows the Laravel/Symfony mailer convention the Back Office comes from:
``"tls"`` is STARTTLS (upgrade a plaintext session, usually port 587 or 25) and ``"ssl"``
is implicit TLS from the first byte (SMTPS, usually port 465). A provider that another
surface made unencrypted shows ``encryption: null``.
"""

from __future__ import annotations

from typing import Any, Final

from mailgate.api.backoffice.schemas import ProviderCreate, ProviderUpdate
from mailgate.api.fields import iso
from mailgate.domain import Security
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_, translate_stored
from mailgate.services.providers import ProviderChanges
from mailgate.store.models import Provider

ENCRYPTION_TO_SECURITY: Final = {"tls": Security.STARTTLS, "ssl": Security.TLS}
SECURITY_TO_ENCRYPTION: Final[dict[Security, str | None]] = {
    Security.STARTTLS: "tls",
    Security.TLS: "ssl",
    Security.NONE: None,
}

# Request field -> domain field, for the fields whose names differ. ``driver`` is only
# ever "smtp", which every provider already is: it is checked, not stored.
REQUEST_TO_DOMAIN: Final = {
    "caption": "name",
    "sendFrom": "from_email",
    "sendFromName": "from_name",
    "encryption": "security",
    "isEnabled": "is_enabled",
}
DOMAIN_TO_REQUEST: Final = {v: k for k, v in REQUEST_TO_DOMAIN.items()}


def to_changes(body: ProviderCreate | ProviderUpdate, *, partial: bool) -> ProviderChanges:
    """A create (every field; ``caption`` defaults to the host) or a PATCH (fields sent)."""
    nulls = sorted(n for n in body.model_fields_set if getattr(body, n) is None)
    if nulls:
        raise Invalid([Issue(name, N_("Must not be null."), "invalid_type") for name in nulls])
    if partial:
        sent = set(body.model_fields_set)
    else:
        sent = {n for n in type(body).model_fields if getattr(body, n) is not None}
    values: dict[str, Any] = {}
    for name in sent - {"driver"}:
        value = getattr(body, name)
        if name == "encryption":
            value = ENCRYPTION_TO_SECURITY[value]
        values[REQUEST_TO_DOMAIN.get(name, name)] = value
    if not partial and "name" not in values:
        values["name"] = body.host
    return ProviderChanges(**values)


def provider_out(provider: Provider, *, language: str) -> dict[str, Any]:
    """A provider as an SMTP Service Provider object, ``statusReason`` in ``language``.
    The password never leaves."""
    return {
        "id": provider.id,
        "caption": provider.name,
        "driver": provider.driver,
        "host": provider.host,
        "port": provider.port,
        "username": provider.username,
        "sendFrom": provider.from_email,
        "sendFromName": provider.from_name,
        "encryption": SECURITY_TO_ENCRYPTION[Security(provider.security)],
        "isEnabled": provider.is_enabled,
        "hasPassword": provider.password_encrypted is not None,
        "status": provider.status,
        "statusReason": translate_stored(provider.status_reason, language),
        "lastTestedAt": iso(provider.last_tested_at),
        "createdAt": iso(provider.created_at),
        "updatedAt": iso(provider.updated_at),
    }
