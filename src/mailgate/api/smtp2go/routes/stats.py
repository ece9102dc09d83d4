"""``/v3/stats/...``: SMTP2GO's reports over the last 30 days (bounces, spam, unsubscribes),
the monthly cycle, their summary, and the per-sender history of a date range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mailgate.api.deps import CtxDep, SessionDep
from mailgate.api.messages_common import parse_instant
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_stats as mapping
from mailgate.api.smtp2go.auth import MessageReader
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_stats import (
    BouncesEnvelope,
    CycleEnvelope,
    HistoryEnvelope,
    HistoryRequest,
    SpamEnvelope,
    StatsRequest,
    SummaryEnvelope,
    UnsubsEnvelope,
)
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.services import stats as service

router = APIRouter(prefix="/stats", tags=["smtp2go: stats"], route_class=JsonAnyContentTypeRoute)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 429)
}
WINDOW: Final = timedelta(days=30)  # SMTP2GO's reports cover the last 30 days


async def _last_30_days(
    session: AsyncSession, account_id: int, body: StatsRequest | None
) -> service.Counts:
    mapping.check_username((body or StatsRequest()).username)
    now = datetime.now(UTC)
    return await service.event_totals(
        session=session, account_id=account_id, start=now - WINDOW, end=now
    )


async def _cycle(session: AsyncSession, account_id: int, allowance: int) -> dict[str, Any]:
    start, following = service.month_of(datetime.now(UTC))
    counts = await service.event_totals(
        session=session, account_id=account_id, start=start, end=following
    )
    return mapping.cycle(mapping.emails_sent(counts), start, following, allowance)


@router.post("/email_bounces", response_model=BouncesEnvelope, responses=ERRORS)
async def email_bounces(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: StatsRequest | None = None,
) -> Response:
    """Emails, rejects, soft and hard bounces of the last 30 days."""
    counts = await _last_30_days(session, principal.account_id, body)
    return json_response(envelope(request, mapping.bounces(counts)))


@router.post("/email_spam", response_model=SpamEnvelope, responses=ERRORS)
async def email_spam(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: StatsRequest | None = None,
) -> Response:
    """Emails, rejects and spam complaints of the last 30 days."""
    counts = await _last_30_days(session, principal.account_id, body)
    return json_response(envelope(request, mapping.spam(counts)))


@router.post("/email_unsubs", response_model=UnsubsEnvelope, responses=ERRORS)
async def email_unsubs(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: StatsRequest | None = None,
) -> Response:
    """Emails, rejects and unsubscribes of the last 30 days."""
    counts = await _last_30_days(session, principal.account_id, body)
    return json_response(envelope(request, mapping.unsubs(counts)))


@router.post("/email_cycle", response_model=CycleEnvelope, responses=ERRORS)
async def email_cycle(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    principal: MessageReader,
    body: StatsRequest | None = None,
) -> Response:
    """This calendar month (UTC): emails sent, and what is left of MAILGATE_STATS_CYCLE_MAX."""
    mapping.check_username((body or StatsRequest()).username)
    cycle = await _cycle(session, principal.account_id, ctx.settings.stats_cycle_max)
    return json_response(envelope(request, cycle))


@router.post("/email_summary", response_model=SummaryEnvelope, responses=ERRORS)
async def email_summary(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    principal: MessageReader,
    body: StatsRequest | None = None,
) -> Response:
    """email_bounces, email_cycle, email_spam and email_unsubs in one report."""
    counts = await _last_30_days(session, principal.account_id, body)
    cycle = await _cycle(session, principal.account_id, ctx.settings.stats_cycle_max)
    return json_response(envelope(request, mapping.summary(counts, cycle)))


@router.post("/email_history", response_model=HistoryEnvelope, responses=ERRORS)
async def email_history(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: HistoryRequest | None = None,
) -> Response:
    """Per sender address (or domain): emails, bytes and events, from ``start_date`` (default:
    30 days ago, midnight UTC) to ``end_date`` (default: now)."""
    query = body or HistoryRequest()
    grouping = mapping.check_history_grouping(query.group_by, query.subaccounts)
    now = datetime.now(UTC)
    end = parse_instant(query.end_date, "end_date") if query.end_date else now
    default_start = (now - WINDOW).replace(hour=0, minute=0, second=0, microsecond=0)
    start = parse_instant(query.start_date, "start_date") if query.start_date else default_start
    if end <= start:
        raise Invalid.field("end_date", N_("Must be later than start_date."), "invalid_range")
    senders = await service.sender_totals(
        session=session, account_id=principal.account_id, start=start, end=end
    )
    return json_response(envelope(request, mapping.history(senders, grouping)))
