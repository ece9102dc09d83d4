"""Native (Sendmux) field names <-> domain. Pure functions and lookup tables."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from mailgate.api import fields
from mailgate.api.fields import iso
from mailgate.domain import AuthMethod, ProviderStatus, QuotaRange, QuotaWindow, Security
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_, translate_stored
from mailgate.services.providers import ProviderChanges, quotas_of
from mailgate.store.models import Provider

PROTOCOL_TO_SECURITY: Final = {
    "none": Security.NONE,
    "starttls": Security.STARTTLS,
    "tls": Security.TLS,
    "ssl": Security.TLS,
}
SECURITY_TO_PROTOCOL: Final = {
    Security.NONE: "none",
    Security.STARTTLS: "starttls",
    Security.TLS: "tls",
}

# Request field -> domain field, for the fields whose names differ.
REQUEST_TO_DOMAIN: Final = {
    "smtp_host": "host",
    "smtp_port": "port",
    "smtp_protocol": "security",
    "smtp_username": "username",
    "smtp_password": "password",
    "smtp_auth_method": "auth_method",
    "smtp_tls_verify": "verify_tls",
}
DOMAIN_TO_REQUEST: Final = {v: k for k, v in REQUEST_TO_DOMAIN.items()}
NOT_NULLABLE: Final = frozenset(
    {
        "name",
        "smtp_host",
        "smtp_port",
        "smtp_protocol",
        "smtp_username",
        "smtp_password",
        "smtp_auth_method",
        "smtp_tls_verify",
        "percentage",
        "is_default",
        "variables",
    }
)


def _quota(value: Any) -> QuotaRange | None:
    if value is None:
        return None
    if isinstance(value, int):
        return QuotaRange(value, value)
    return QuotaRange(value.min, value.max)


def refuse_nulls(body: BaseModel, not_nullable: frozenset[str]) -> None:
    """Refuse a body that sends ``null`` for any of the ``not_nullable`` fields."""
    nulls = [n for n in sorted(body.model_fields_set & not_nullable) if getattr(body, n) is None]
    if nulls:
        raise Invalid([Issue(name, N_("Must not be null."), "invalid_type") for name in nulls])


def to_changes(body: BaseModel, *, partial: bool) -> ProviderChanges:
    """A create (all given fields) or PATCH (only the fields sent) body as domain changes."""
    refuse_nulls(body, NOT_NULLABLE)
    if partial:
        sent = body.model_fields_set
    else:  # a create takes every field; an optional one left at None is simply not set
        sent = {n for n in type(body).model_fields if getattr(body, n) is not None}
    values: dict[str, Any] = {}
    for name in sent:
        value = getattr(body, name)
        if name == "smtp_protocol":
            value = PROTOCOL_TO_SECURITY[value]
        elif name == "smtp_auth_method":
            value = AuthMethod(value)
        elif name == "quotas":
            if value is None:
                value = dict.fromkeys(QuotaWindow)
            else:
                windows = value.model_fields_set if partial else set(type(value).model_fields)
                value = {QuotaWindow(w): _quota(getattr(value, w)) for w in windows}
        values[REQUEST_TO_DOMAIN.get(name, name)] = value
    return ProviderChanges(**values)


def provider_out(
    provider: Provider, *, language: str, with_variables: bool = True
) -> dict[str, Any]:
    """A provider as a Sendmux provider object; ``status_reason`` in ``language``."""
    is_active = provider.is_enabled
    quotas = {
        window.value: (None if q is None else {"min": q.min, "max": q.max})
        for window, q in quotas_of(provider).items()
    }
    item: dict[str, Any] = {
        "id": provider.public_id,
        "name": provider.name,
        "type": provider.driver,
        "status": provider.status,
        "status_reason": translate_stored(provider.status_reason, language),
        "is_active": is_active,
        "is_shared": False,
        "is_editable": True,
        "is_default": provider.is_default,
        "allowed_actions": {
            "update": True,
            "delete": True,
            "activate": not is_active,
            "deactivate": is_active,
            "test": True,
            "update_variables": True,
        },
        "smtp_host": provider.host,
        "smtp_port": provider.port,
        "smtp_protocol": SECURITY_TO_PROTOCOL[Security(provider.security)],
        "smtp_username": provider.username,
        "smtp_auth_method": provider.auth_method,
        "smtp_tls_verify": provider.verify_tls,
        "has_smtp_password": provider.password_encrypted is not None,
        "from_email": provider.from_email,
        "from_name": provider.from_name,
        "reply_to_email": provider.reply_to_email,
        "reply_to_name": provider.reply_to_name,
        "oauth_email": provider.oauth_email,
        "has_refresh_token": provider.oauth_refresh_token_encrypted is not None,
        "quotas": quotas,
        "percentage": provider.percentage,
        "tracking_domain": provider.tracking_domain,
        "created_at": iso(provider.created_at),
        "updated_at": iso(provider.updated_at),
        "last_tested_at": iso(provider.last_tested_at),
        "last_used_at": iso(provider.last_used_at),
    }
    if with_variables:
        item["variables"] = dict(provider.variables or {})
    return item


def encode_cursor(last_id: int) -> str:
    return fields.encode_cursor("p", last_id)


def decode_cursor(cursor: str) -> int:
    return fields.decode_cursor("p", cursor, "cursor")


def status_filter(value: str | None) -> ProviderStatus | None:
    if value is None:
        return None
    found = fields.parse_choices(ProviderStatus, [value], "status")
    return found[0] if found else None
