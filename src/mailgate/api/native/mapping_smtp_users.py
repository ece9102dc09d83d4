"""Native SMTP users and IP authentication <-> domain. Pure functions and lookup tables."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from mailgate.api.fields import iso
from mailgate.api.native.mapping import refuse_nulls
from mailgate.domain import SendingRateLimit
from mailgate.services.smtp_users import SmtpUserChanges, rate_limit_of
from mailgate.store.models import IpAuthNetwork, SmtpUser

# Request field -> domain field, for the fields whose names differ.
REQUEST_TO_DOMAIN: Final = {"is_active": "is_enabled"}
DOMAIN_TO_REQUEST: Final = {v: k for k, v in REQUEST_TO_DOMAIN.items()}
NOT_NULLABLE: Final = frozenset({"username", "password", "generate_password", "is_active"})
USER_CURSOR: Final = "su"
NETWORK_CURSOR: Final = "ip"


def to_changes(body: BaseModel, *, partial: bool) -> SmtpUserChanges:
    """A create (all given fields) or PATCH (only the fields sent) body as domain changes."""
    refuse_nulls(body, NOT_NULLABLE)
    if partial:
        sent = body.model_fields_set
    else:  # a create takes every field; an optional one left at None is simply not set
        sent = {n for n in type(body).model_fields if getattr(body, n) is not None}
    values: dict[str, Any] = {}
    for name in sent:
        value = getattr(body, name)
        if name == "rate_limit" and value is not None:
            value = SendingRateLimit(value.max_messages, value.period_seconds)
        values[REQUEST_TO_DOMAIN.get(name, name)] = value
    return SmtpUserChanges(**values)


def smtp_user_out(user: SmtpUser, *, generated_password: str | None = None) -> dict[str, Any]:
    """A user as the native object; ``generated_password`` only when this request made one."""
    limit = rate_limit_of(user)
    item: dict[str, Any] = {
        "id": user.public_id,
        "username": user.username,
        "description": user.description,
        "is_active": user.is_enabled,
        "allowed_senders": list(user.allowed_senders or []),
        "rate_limit": (
            None
            if limit is None
            else {"max_messages": limit.max_messages, "period_seconds": limit.period_seconds}
        ),
        "has_password": bool(user.password_hash),
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "last_used_at": iso(user.last_used_at),
    }
    if generated_password is not None:
        item["generated_password"] = generated_password
    return item


def without_generated_password(body: dict[str, Any]) -> dict[str, Any]:
    """An answer as kept for Idempotency-Key replays: a generated password is shown once."""
    data = body.get("data")
    if isinstance(data, dict) and "generated_password" in data:
        return {**body, "data": {**data, "generated_password": None}}
    return body


def network_out(row: IpAuthNetwork) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "network": row.network,
        "description": row.description,
        "created_at": iso(row.created_at),
    }
