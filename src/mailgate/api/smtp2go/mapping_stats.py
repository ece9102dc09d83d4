"""SMTP2GO's stats reports from Mailgate's counts (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.services.stats import Counts, SenderTotals, sum_counts

__all__ = [
    "HISTORY_GROUPS",
    "UNLIMITED",
    "bounces",
    "check_history_grouping",
    "check_username",
    "cycle",
    "emails_sent",
    "history",
    "spam",
    "summary",
    "unsubs",
]

HISTORY_GROUPS: Final = ("email_address", "domain")
UNLIMITED: Final = 2**31 - 1  # cycle_max when the operator set no monthly allowance


def emails_sent(counts: Counts) -> int:
    """Recipients an upstream answered for: delivered, bounced or given up on (SMTP2GO's
    "emails"). A bounce reported after delivery counts that recipient twice."""
    return counts["delivered"] + counts["bounce"] + counts["failed"]


def check_username(username: str | None) -> None:
    if username:
        raise Invalid.field(
            "username",
            N_("Stats per SMTP user are not kept: leave username out for the account's."),
            "unsupported",
        )


def check_history_grouping(group_by: str | None, subaccounts: Sequence[str] | None) -> str:
    if subaccounts:
        raise Invalid.field("subaccounts", N_("Mailgate has no subaccounts."), "unsupported")
    grouping = group_by or HISTORY_GROUPS[0]
    if grouping not in HISTORY_GROUPS:
        raise Invalid.field(
            "group_by",
            N_("Must be one of: {expected}."),
            "invalid_choice",
            expected=", ".join(HISTORY_GROUPS),
        )
    return grouping


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def _percent_text(part: int, whole: int) -> str:
    return f"{_percent(part, whole):.2f}"


def bounces(counts: Counts) -> dict[str, Any]:
    emails = emails_sent(counts)
    return {
        "emails": emails,
        "rejects": counts["reject"],
        "softbounces": counts["soft_bounce"],
        "hardbounces": counts["hard_bounce"],
        "bounce_percent": _percent_text(counts["bounce"], emails),
    }


def spam(counts: Counts) -> dict[str, Any]:
    emails = emails_sent(counts)
    return {
        "emails": emails,
        "rejects": counts["reject"],
        "spams": counts["spam"],
        "spam_percent": _percent_text(counts["spam"], emails),
    }


def unsubs(counts: Counts) -> dict[str, Any]:
    emails = emails_sent(counts)
    return {
        "emails": emails,
        "rejects": counts["reject"],
        "unsubscribes": counts["unsubscribe"],
        "unsubscribe_percent": _percent_text(counts["unsubscribe"], emails),
    }


def cycle(used: int, start: datetime, following: datetime, allowance: int) -> dict[str, Any]:
    """``following``: the next cycle's start; SMTP2GO names the cycle's last day as its end."""
    maximum = allowance or UNLIMITED
    return {
        "cycle_start": str(start),
        "cycle_end": str(following - timedelta(days=1)),
        "cycle_used": used,
        "cycle_remaining": max(maximum - used, 0),
        "cycle_max": maximum,
    }


def summary(counts: Counts, cycle_data: dict[str, Any]) -> dict[str, Any]:
    emails = emails_sent(counts)
    return {
        **cycle_data,
        "email_count": emails,
        "rejects": counts["reject"],
        "bounce_rejects": counts["reject"],
        "softbounces": counts["soft_bounce"],
        "hardbounces": counts["hard_bounce"],
        "bounce_percent": _percent_text(counts["bounce"], emails),
        "spam_emails": counts["spam"],
        "spam_rejects": counts["reject"],
        "spam_percent": _percent_text(counts["spam"], emails),
        "unsubscribes": counts["unsubscribe"],
        "unsubscribe_percent": _percent_text(counts["unsubscribe"], emails),
        "opens": counts["open"],
        "clicks": counts["click"],
    }


def _history_row(name_field: str, name: str, counts: Counts, size: int) -> dict[str, Any]:
    used = emails_sent(counts)
    row: dict[str, Any] = {name_field: name}
    if name_field == "domain":
        row["domain_verified"] = False  # Mailgate does not verify sender domains
    row.update(
        lastip="",  # the submitting client's address is not kept
        used=used,
        bytecount=size,
        avgsize=round(size / counts["processed"], 2) if counts["processed"] else 0.0,
        bounces=counts["bounce"],
        clicks=counts["click"],
        opens=counts["open"],
        rejects=counts["reject"],
        spam=counts["spam"],
        unsubscribes=counts["unsubscribe"],
        bounce_percent=_percent(counts["bounce"], used),
        open_percent=_percent(counts["open"], used),
        reject_percent=_percent(counts["reject"], used),
        spam_percent=_percent(counts["spam"], used),
        unsubscribe_percent=_percent(counts["unsubscribe"], used),
    )
    return row


def history(senders: Sequence[SenderTotals], grouping: str) -> dict[str, Any]:
    members: dict[str, list[SenderTotals]] = {}
    for one in senders:
        name = one.sender.rpartition("@")[2] if grouping == "domain" else one.sender
        members.setdefault(name, []).append(one)
    groups = [
        SenderTotals(name, sum_counts(m.counts for m in ones), sum(m.bytes for m in ones))
        for name, ones in members.items()
    ]
    ordered = sorted(groups, key=lambda g: (-emails_sent(g.counts), g.sender))
    total = sum_counts(g.counts for g in ordered)
    emails = emails_sent(total)
    return {
        "count": emails,
        "history": [_history_row(grouping, g.sender, g.counts, g.bytes) for g in ordered],
        "bounce_percent_total": _percent(total["bounce"], emails),
        "open_percent_total": _percent(total["open"], emails),
        "reject_percent_total": _percent(total["reject"], emails),
        "spam_percent_total": _percent(total["spam"], emails),
        "unsubscribe_percent_total": _percent(total["unsubscribe"], emails),
    }
