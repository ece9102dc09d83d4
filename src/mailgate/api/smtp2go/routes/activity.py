"""``/v3/activity/search``: events of this account's mail, in SMTP2GO's shape.

At most 1,000 events per answer (``limit``, default 100), newest first, with
``total_events`` counting every match and a ``continue_token`` for the next page (send the
same filters with it). Without ``start_date`` the search starts today at 00:00 UTC, as
SMTP2GO's does. Each key may search 60 times a minute (``MAILGATE_ACTIVITY_RATE_LIMIT``),
on top of its general limit; beyond that a 429 in SMTP2GO's error shape.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from limits import RateLimitItem, parse
from starlette.responses import Response

from mailgate.api.deps import CtxDep, SessionDep
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.messages_common import parse_instant
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_engagement as mapping
from mailgate.api.smtp2go.auth import EventReader
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_engagement import ActivityEnvelope, ActivitySearchRequest
from mailgate.errors import Invalid, Issue, RateLimited
from mailgate.i18n import N_
from mailgate.security.rate_limit import RateState
from mailgate.services import activity as service
from mailgate.services.accounts import Principal
from mailgate.services.messages import recipients_of

router = APIRouter(
    prefix="/activity", tags=["smtp2go: activity"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 429)
}
CURSOR: Final = "ac"
DEFAULT_LIMIT: Final = 100
UNSUPPORTED: Final = (
    "search_usernames",
    "subaccounts",
    "only_latest",
    "only_latest_by_sent",
    "include_headers",
    "custom_headers",
)


@functools.cache
def _limit_item(rate: str) -> RateLimitItem:
    return parse(rate)


async def _count_search(request: Request, ctx: CtxDep, principal: Principal) -> None:
    """This endpoint's own per-key limit; its window's state is what the headers show."""
    item = _limit_item(ctx.settings.activity_rate_limit)
    try:
        request.state.rate_limit = await ctx.rate_limiter.hit_limit(
            item, "activity-search", principal.key_prefix
        )
    except RateLimited as exc:
        request.state.rate_limit = RateState(exc.limit, 0, exc.reset_at)
        raise


def _refuse_unsupported(query: ActivitySearchRequest) -> None:
    """Options whose answer Mailgate cannot give: refused rather than silently ignored."""
    issues = [
        Issue(name, N_("Mailgate does not support this option; leave it out."), "unsupported")
        for name in UNSUPPORTED
        if getattr(query, name)
    ]
    if issues:
        raise Invalid(issues)


def _filters(query: ActivitySearchRequest, now: datetime) -> service.EventFilter | None:
    """The search asked for; None when it can match nothing (only ``resubscribed``)."""
    kinds: tuple[service.EventKind, ...] = ()
    if query.event_types:
        found = mapping.event_kinds(query.event_types)
        if found is None:
            return None
        kinds = found
    since = (
        parse_instant(query.start_date, "start_date")
        if query.start_date
        else mapping.midnight_today(now)
    )
    return service.EventFilter(
        since=since,
        until=parse_instant(query.end_date, "end_date") if query.end_date else None,
        kinds=kinds,
        message_public_id=query.search_email_id,
        recipient_contains=query.search_recipient,
        sender_contains=query.search_sender,
        subject_contains=query.search_subject,
        tags=tuple(query.tags or ()),
        any_text=tuple(part.strip() for part in (query.search or "").split("|")),
    )


@router.post("/search", response_model=ActivityEnvelope, responses=ERRORS)
async def search_activity(
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: EventReader,
    body: ActivitySearchRequest | None = None,
) -> Response:
    """Events (processed, delivered, soft-bounced, hard-bounced, rejected, spam,
    unsubscribed, opened, clicked; Mailgate adds deferred, failed and cancelled) matching the
    filters, newest first."""
    await _count_search(request, ctx, principal)
    query = body or ActivitySearchRequest()
    _refuse_unsupported(query)
    filters = _filters(query, datetime.now(UTC))
    if filters is None:
        data = {"events": [], "total_events": 0, "continue_token": None}
        return json_response(envelope(request, data))
    before_id = None
    if query.continue_token:
        before_id = decode_cursor(CURSOR, query.continue_token, "continue_token")
    page = await service.search_events(
        session=session,
        account_id=principal.account_id,
        filters=filters,
        limit=query.limit or DEFAULT_LIMIT,
        before_id=before_id,
    )
    total = await service.count_events(
        session=session, account_id=principal.account_id, filters=filters
    )
    message_ids = list({i.message.id for i in page.items if i.message is not None})
    recipients = await recipients_of(session=session, message_ids=message_ids)
    events = [
        mapping.activity_event(i, recipients.get(i.message.id, []) if i.message else [])
        for i in page.items
    ]
    token = None
    if page.has_more and page.items:
        token = encode_cursor(CURSOR, page.items[-1].event.id)
    data = {"events": events, "total_events": total, "continue_token": token}
    return json_response(envelope(request, data))
