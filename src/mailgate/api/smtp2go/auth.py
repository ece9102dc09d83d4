"""How ``/v3`` finds the key: ``X-Smtp2go-Api-Key``, ``Authorization: Bearer`` /
``X-API-Key``, or ``api_key`` in the JSON body (the official clients, which send no
Content-Type). The body is parsed once: starlette caches it on the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mailgate.api.deps import bearer_or_header_key, require
from mailgate.api.smtp2go.mapping import api_key_from_body
from mailgate.domain import Permission
from mailgate.services.accounts import Principal

__all__ = [
    "AnyKey",
    "EventReader",
    "IpAuthReader",
    "IpAuthWriter",
    "MessageReader",
    "MessageSender",
    "SmtpUserReader",
    "SmtpUserWriter",
    "SuppressionReader",
    "SuppressionWriter",
    "TemplateReader",
    "TemplateWriter",
    "WebhookReader",
    "WebhookWriter",
    "smtp2go_key",
]


async def smtp2go_key(request: Request) -> str | None:
    header = request.headers.get("x-smtp2go-api-key", "").strip()
    if header:
        return header
    key = await bearer_or_header_key(request)
    if key:
        return key
    if not (await request.body()).strip():
        return None
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):  # the route reports the bad body itself
        return None
    return api_key_from_body(body)


# Endpoints every key may call: authenticated and counted, no particular permission.
AnyKey = Annotated[Principal, Depends(require(None, smtp2go_key))]
MessageSender = Annotated[Principal, Depends(require(Permission.MESSAGES_SEND, smtp2go_key))]
MessageReader = Annotated[Principal, Depends(require(Permission.MESSAGES_READ, smtp2go_key))]
SmtpUserReader = Annotated[Principal, Depends(require(Permission.SMTP_USERS_READ, smtp2go_key))]
SmtpUserWriter = Annotated[Principal, Depends(require(Permission.SMTP_USERS_WRITE, smtp2go_key))]
IpAuthReader = Annotated[Principal, Depends(require(Permission.IP_AUTH_READ, smtp2go_key))]
IpAuthWriter = Annotated[Principal, Depends(require(Permission.IP_AUTH_WRITE, smtp2go_key))]
TemplateReader = Annotated[Principal, Depends(require(Permission.TEMPLATES_READ, smtp2go_key))]
TemplateWriter = Annotated[Principal, Depends(require(Permission.TEMPLATES_WRITE, smtp2go_key))]
SuppressionReader = Annotated[
    Principal, Depends(require(Permission.SUPPRESSIONS_READ, smtp2go_key))
]
SuppressionWriter = Annotated[
    Principal, Depends(require(Permission.SUPPRESSIONS_WRITE, smtp2go_key))
]
EventReader = Annotated[Principal, Depends(require(Permission.EVENTS_READ, smtp2go_key))]
WebhookReader = Annotated[Principal, Depends(require(Permission.WEBHOOKS_READ, smtp2go_key))]
WebhookWriter = Annotated[Principal, Depends(require(Permission.WEBHOOKS_WRITE, smtp2go_key))]
