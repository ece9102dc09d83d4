"""SMTP2GO's words <-> domain: error codes, endpoint permissions, request ids, body keys."""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

from mailgate.domain import Permission

ERROR_CODE_PREFIX: Final = "E_ApiResponseCodes."

# Every /v3 endpoint served, and the permission a key needs for it (None: any valid key).
# The permissions endpoint lists the ones a key may call; a test keeps this table complete.
ENDPOINTS: Final[dict[str, Permission | None]] = {
    "/api_keys/permissions": None,
    "/email/send": Permission.MESSAGES_SEND,
    "/email/mime": Permission.MESSAGES_SEND,
    "/email/scheduled": Permission.MESSAGES_READ,
    "/email/scheduled/remove": Permission.MESSAGES_SEND,
    "/email/search": Permission.MESSAGES_READ,
    "/smtp/add": Permission.SMTP_USERS_WRITE,
    "/smtp/edit": Permission.SMTP_USERS_WRITE,
    "/smtp/patch": Permission.SMTP_USERS_WRITE,
    "/smtp/remove": Permission.SMTP_USERS_WRITE,
    "/smtp/view": Permission.SMTP_USERS_READ,
    "/users/smtp/add": Permission.SMTP_USERS_WRITE,
    "/users/smtp/edit": Permission.SMTP_USERS_WRITE,
    "/users/smtp/patch": Permission.SMTP_USERS_WRITE,
    "/users/smtp/remove": Permission.SMTP_USERS_WRITE,
    "/users/smtp/view": Permission.SMTP_USERS_READ,
    "/ip_auth/view": Permission.IP_AUTH_READ,
    "/ip_auth/patch": Permission.IP_AUTH_WRITE,
    "/ip_auth/edit": Permission.IP_AUTH_WRITE,
    "/ip_auth/remove": Permission.IP_AUTH_WRITE,
    "/webhook/add": Permission.WEBHOOKS_WRITE,
    "/webhook/edit": Permission.WEBHOOKS_WRITE,
    "/webhook/remove": Permission.WEBHOOKS_WRITE,
    "/webhook/view": Permission.WEBHOOKS_READ,
    "/stats/email_bounces": Permission.MESSAGES_READ,
    "/stats/email_cycle": Permission.MESSAGES_READ,
    "/stats/email_history": Permission.MESSAGES_READ,
    "/stats/email_spam": Permission.MESSAGES_READ,
    "/stats/email_summary": Permission.MESSAGES_READ,
    "/stats/email_unsubs": Permission.MESSAGES_READ,
    "/template/add": Permission.TEMPLATES_WRITE,
    "/template/edit": Permission.TEMPLATES_WRITE,
    "/template/delete": Permission.TEMPLATES_WRITE,
    "/template/search": Permission.TEMPLATES_READ,
    "/template/view": Permission.TEMPLATES_READ,
    "/suppression/add": Permission.SUPPRESSIONS_WRITE,
    "/suppression/view": Permission.SUPPRESSIONS_READ,
    "/suppression/remove": Permission.SUPPRESSIONS_WRITE,
    "/activity/search": Permission.EVENTS_READ,
    "/archive/search": Permission.MESSAGES_READ,
    "/archive/view": Permission.MESSAGES_READ,
    "/archive/email": Permission.MESSAGES_READ,
}

_REQUEST_ID: Final = re.compile(r"^req_([0-9a-f]{24})$")


def error_code(name: str) -> str:
    return ERROR_CODE_PREFIX + name


def permitted_endpoints(permissions: frozenset[str]) -> list[str]:
    """The endpoints (SMTP2GO paths, no ``/v3``) a key holding ``permissions`` may call."""
    return [path for path, needed in ENDPOINTS.items() if needed is None or needed in permissions]


def api_key_from_body(body: Any) -> str | None:
    """``api_key`` from a parsed JSON body, when it is a non-empty string."""
    if isinstance(body, dict):
        key = body.get("api_key")
        if isinstance(key, str) and key.strip():
            return key.strip()
    return None


def request_uuid(request_id: str) -> str:
    """SMTP2GO's ``request_id`` is a UUID: Mailgate's ``x-request-id`` (``req_`` + 24 hex) laid
    into a version-4-shaped UUID around its two fixed digits, so logs can be matched up."""
    match = _REQUEST_ID.match(request_id)
    if match is None:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, request_id or "mailgate"))
    d = match.group(1)
    return str(uuid.UUID(hex=f"{d[:12]}4{d[12:15]}8{d[15:]}000000"))
