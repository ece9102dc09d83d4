"""SMTP2GO SMTP users and IP auth <-> domain: rate-limit periods, statuses, options, shapes."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Any, Final

from mailgate.api.smtp2go.schemas_smtp_users import (
    IpAuthPatchRequest,
    RateLimitFields,
    SendingOptions,
    SmtpUserRequest,
)
from mailgate.domain import SendingRateLimit
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services.smtp_users import SmtpUserChanges, rate_limit_of
from mailgate.store.models import IpAuthNetwork, SmtpUser

__all__ = [
    "DOMAIN_TO_REQUEST",
    "NETWORK_TO_REQUEST",
    "Mode",
    "check_ip_auth_patch",
    "format_period",
    "ip_address_of",
    "ip_auth_out",
    "parse_period",
    "smtp_user_changes",
    "smtp_user_out",
    "view_data",
]

# SMTP2GO's words for "no custom limit" and for the account-wide default Mailgate reports.
NO_PERIOD: Final = "0:00:00"
DEFAULTS: Final = {"default_ratelimit_value": 0, "default_ratelimit_period": "unlimited"}

# Domain field -> request field, for service errors.
DOMAIN_TO_REQUEST: Final = {
    "password": "email_password",
    "generate_password": "email_password",
    "is_enabled": "status",
    "rate_limit": "custom_ratelimit",
    "rate_limit.max_messages": "custom_ratelimit_value",
    "rate_limit.period_seconds": "custom_ratelimit_period",
}
NETWORK_TO_REQUEST: Final = {"network": "ip_address"}

_UNIT_SECONDS: Final = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,  # as the `limits` library counts a month
}
_PERIOD: Final = re.compile(
    r"^\s*(?:(?P<count>\d{1,6})\s*(?P<unit>second|minute|hour|day|week|month)s?)?"
    r"\s*,?\s*(?:(?P<h>\d{1,6}):(?P<m>[0-5]?\d):(?P<s>[0-5]?\d))?\s*$",
    re.IGNORECASE,
)
_OFF: Final = N_("Mailgate does not offer this option: leave it out, or off.")


class Mode(StrEnum):
    """How a write treats what it is not sent: ``add`` and ``patch`` leave it be; ``edit``
    replaces the description and the custom rate limit (SMTP2GO's default: off)."""

    ADD = "add"
    EDIT = "edit"
    PATCH = "patch"


def parse_period(text: str) -> int:
    """SMTP2GO's period syntax (``"1 hour"``, ``"2 days"``, ``"1 week"``, ``"3 months"``,
    ``"0:30:00"``, ``"4 months 5:00:00"``) in seconds; ValueError when it does not read so."""
    match = _PERIOD.match(text)
    if match is None or not (match["count"] or match["h"]):
        raise ValueError(text)
    seconds = 0
    if match["count"]:
        seconds += int(match["count"]) * _UNIT_SECONDS[match["unit"].lower()]
    if match["h"]:
        seconds += int(match["h"]) * 3600 + int(match["m"]) * 60 + int(match["s"])
    return seconds


def format_period(seconds: int) -> str:
    """Seconds in SMTP2GO's syntax: whole days or hours in words, anything else ``h:mm:ss``."""
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds < 86400 and seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" if hours == 1 else f"{hours} hours"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours}:{rest // 60:02}:{rest % 60:02}"
    if not days:
        return clock
    return f"{days} day {clock}" if days == 1 else f"{days} days {clock}"


def _unsupported(body: SendingOptions) -> list[Issue]:
    """Options left at their "off" value pass; any other is refused, naming the field."""
    off: dict[str, Any] = {
        "ip_pool": body.ip_pool is None,
        "feedback_enabled": not body.feedback_enabled,
        "open_tracking_enabled": not body.open_tracking_enabled,
        "click_tracking_enabled": not body.click_tracking_enabled,
        "archive_enabled": not body.archive_enabled,
        "audit_email": not body.audit_email,
        "bounce_notifications": body.bounce_notifications in (None, "", "from"),
    }
    issues = [Issue(name, _OFF, "unsupported") for name, ok in off.items() if not ok]
    if body.subaccount_id is not None:
        issues.append(Issue("subaccount_id", N_("Subaccounts are not supported."), "unsupported"))
    if isinstance(body, RateLimitFields) and body.status == "sandbox":
        issues.append(Issue("status", _OFF, "unsupported"))
    return issues


def _rate_limit(
    body: RateLimitFields, mode: Mode, current: SendingRateLimit | None, issues: list[Issue]
) -> Any:
    """The custom limit to store (a limit, or None to clear), or ``...`` to leave it."""
    enabled = body.custom_ratelimit
    if enabled is None:
        if mode is Mode.EDIT:
            return None
        if mode is Mode.ADD or current is None:
            return ...  # SMTP2GO: a value or period is stored only with custom_ratelimit true
    elif not enabled:
        return None
    value = body.custom_ratelimit_value
    if value is None and current is not None and mode is Mode.PATCH:
        value = current.max_messages
    period: int | None = None
    if body.custom_ratelimit_period is not None:
        try:
            period = parse_period(body.custom_ratelimit_period)
        except ValueError:
            issues.append(
                Issue(
                    "custom_ratelimit_period",
                    N_('Must read like "1 hour", "2 days", "1 week", "1 month" or "0:30:00".'),
                )
            )
            return ...
    elif current is not None and mode is Mode.PATCH:
        period = current.period_seconds
    for name, given in (("custom_ratelimit_value", value), ("custom_ratelimit_period", period)):
        if given is None:
            issues.append(Issue(name, N_("Required when custom_ratelimit is true."), "required"))
    if value is None or period is None:
        return ...
    return SendingRateLimit(value, period)


def smtp_user_changes(
    body: SmtpUserRequest, *, mode: Mode, current: SmtpUser | None = None
) -> SmtpUserChanges:
    """An add, edit or patch body as domain changes (``current``: the user edited)."""
    issues = _unsupported(body)
    values: dict[str, Any] = {}
    if mode is Mode.ADD:
        values["username"] = body.username
    if body.email_password == "":  # SMTP2GO: "leave blank for an auto generated value"
        values["generate_password"] = True
    elif body.email_password is not None:
        values["password"] = body.email_password
    if body.description is not None or mode is Mode.EDIT:
        values["description"] = body.description or ""
    if body.status is not None and body.status != "sandbox":
        values["is_enabled"] = body.status == "allowed"
    if body.allowed_senders is not None:
        values["allowed_senders"] = body.allowed_senders
    limit = _rate_limit(body, mode, rate_limit_of(current) if current else None, issues)
    if limit is not ...:
        values["rate_limit"] = limit
    if issues:
        raise Invalid(issues)
    return SmtpUserChanges(**values)


def check_ip_auth_patch(body: IpAuthPatchRequest) -> None:
    """Entries relay as listed: no per-entry limit or status other than "allowed"."""
    issues = _unsupported(body)
    if body.custom_ratelimit:
        issues.append(Issue("custom_ratelimit", _OFF, "unsupported"))
    if body.status == "blocked":
        issues.append(Issue("status", _OFF, "unsupported"))
    if issues:
        raise Invalid(issues)


def _options(*, enabled: bool, description: str, limit: SendingRateLimit | None) -> dict[str, Any]:
    return {
        "sending_allowed": enabled,
        "status": "allowed" if enabled else "blocked",
        "description": description,
        "custom_ratelimit": limit is not None,
        "custom_ratelimit_value": limit.max_messages if limit else None,
        "custom_ratelimit_period": format_period(limit.period_seconds) if limit else NO_PERIOD,
        "feedback_enabled": False,
        "feedback_domain": "default",
        "feedback_html": "",
        "feedback_text": "",
        "archive_enabled": False,
        "open_tracking_enabled": False,
        "click_tracking_enabled": False,
        "audit_email": None,
        "bounce_notifications": "from",
    }


def smtp_user_out(user: SmtpUser, *, generated_password: str | None = None) -> dict[str, Any]:
    """A user in SMTP2GO's words. ``email_password`` is the password only when this request
    generated it; a stored password cannot be shown (only its hash is kept)."""
    return {
        "username": user.username,
        "email_password": generated_password,
        "allowed_senders": list(user.allowed_senders or []),
        **_options(
            enabled=user.is_enabled, description=user.description, limit=rate_limit_of(user)
        ),
    }


def ip_address_of(row: IpAuthNetwork) -> str:
    """A single address as itself (``192.0.2.7``), a wider network in CIDR notation."""
    network = ipaddress.ip_network(row.network)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return row.network


def ip_auth_out(row: IpAuthNetwork) -> dict[str, Any]:
    return {
        "ip_address": ip_address_of(row),
        **_options(enabled=True, description=row.description, limit=None),
    }


def view_data(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A view's ``data``: the results and the account-wide default limit (none)."""
    return {"results": results, **DEFAULTS}
