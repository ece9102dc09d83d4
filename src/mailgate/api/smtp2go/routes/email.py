"""``/v3/email/...``: send (standard and MIME), scheduled mail, and the deprecated search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.deps import CtxDep, SessionDep
from mailgate.api.direct import direct
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.message_templates import render_one, template_request
from mailgate.api.messages_common import parse_instant
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_email as mapping
from mailgate.api.smtp2go.auth import MessageReader, MessageSender
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import (
    EmailSearchEnvelope,
    EmailSearchRequest,
    ErrorEnvelope,
    RemoveScheduledRequest,
    ScheduledEnvelope,
    ScheduledRemovedEnvelope,
    ScheduledSearchRequest,
    SendEmailRequest,
    SendEnvelope,
    SendMimeRequest,
)
from mailgate.domain import MessageStatus
from mailgate.errors import Conflict, Invalid, NotFound
from mailgate.i18n import N_
from mailgate.services import messages as service
from mailgate.services.accounts import Principal
from mailgate.services.messages import Submission
from mailgate.store.models import Message
from mailgate.validation import check_email

router = APIRouter(prefix="/email", tags=["smtp2go: email"], route_class=JsonAnyContentTypeRoute)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 402, 403, 404, 429)
}
SEARCH_CURSOR: Final = "s"
SCHEDULED_LIMIT: Final = 1000
SEARCH_LIMIT: Final = 100


async def _accept(
    request: Request, ctx: CtxDep, principal: Principal, submission: Submission
) -> Response:
    accepted = await ctx.accepter.accept(principal.account_id, [submission])
    return json_response(envelope(request, mapping.send_result(accepted[0])))


@router.post("/send", response_model=SendEnvelope, responses=ERRORS)
@direct
async def send_email(
    body: SendEmailRequest,
    request: Request,
    ctx: CtxDep,
    principal: MessageSender,
) -> Response:
    """Send an email from its parts. ``succeeded`` counts the recipients queued (to, cc and
    bcc); suppressed recipients are listed in ``failures``. ``template_id`` renders that
    template with ``template_data``: its parts fill the subject and bodies not given."""
    wanted = template_request(body.template_id, body.template_data)
    template = await render_one(
        ctx, principal.account_id, wanted, lambda stand_in: mapping.draft(body, stand_in)
    )
    submission = mapping.submission(
        body, settings=ctx.settings, now=datetime.now(UTC), template=template
    )
    return await _accept(request, ctx, principal, submission)


@router.post("/mime", response_model=SendEnvelope, responses=ERRORS)
async def send_mime(
    body: SendMimeRequest,
    request: Request,
    ctx: CtxDep,
    principal: MessageSender,
) -> Response:
    """Send a ready MIME message (as text, or base64-encoded); recipients from To, Cc, Bcc."""
    submission = mapping.mime_submission(body, settings=ctx.settings, now=datetime.now(UTC))
    return await _accept(request, ctx, principal, submission)


def _recipient_filter(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_email(value)
    except ValueError:
        return value.strip()


async def _scheduled_page(
    session: SessionDep, principal: Principal, query: ScheduledSearchRequest
) -> service.MessagePage:
    """Page ``query.page`` (from 1) of the scheduled mail matching ``query``."""
    limit = query.limit or SCHEDULED_LIMIT
    before_id: int | None = None
    for number in range(1, (query.page or 1) + 1):
        page = await service.list_messages(
            session=session,
            account_id=principal.account_id,
            limit=limit,
            before_id=before_id,
            statuses=[MessageStatus.SCHEDULED],
            recipient=_recipient_filter(query.search_recipient),
            subject_contains=query.search_subject,
            sender_contains=query.search_sender,
        )
        if number == (query.page or 1):
            return page
        if not page.has_more:
            break
        before_id = page.items[-1].id
    return service.MessagePage(items=[], has_more=False)


@router.post("/scheduled", response_model=ScheduledEnvelope, responses=ERRORS)
async def search_scheduled(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: ScheduledSearchRequest | None = None,
) -> Response:
    """Emails waiting for their ``schedule``, newest first (``limit`` per ``page``)."""
    query = body or ScheduledSearchRequest()
    found: list[Message]
    if query.schedule_id is not None:
        try:
            detail = await service.get_message(
                session=session, account_id=principal.account_id, public_id=query.schedule_id
            )
        except NotFound:
            found = []
        else:
            scheduled = detail.message.status == MessageStatus.SCHEDULED.value
            found = [detail.message] if scheduled else []
    else:
        page = await _scheduled_page(session, principal, query)
        found = page.items
    recipients = await service.recipients_of(session=session, message_ids=[m.id for m in found])
    items = [mapping.scheduled_out(m, recipients[m.id]) for m in found]
    return json_response(envelope(request, items))


@router.post("/scheduled/remove", response_model=ScheduledRemovedEnvelope, responses=ERRORS)
async def remove_scheduled(
    body: RemoveScheduledRequest,
    request: Request,
    session: SessionDep,
    principal: MessageSender,
) -> Response:
    """Cancel a scheduled email (by ``schedule_id`` or ``email_id``, the same id here).
    One that is no longer scheduled is a 402."""
    public_id = body.schedule_id or body.email_id
    if public_id is None:
        raise Invalid.field("schedule_id", N_("This field is required."), "required")
    detail = await service.get_message(
        session=session, account_id=principal.account_id, public_id=public_id
    )
    if detail.message.status != MessageStatus.SCHEDULED.value:
        raise Conflict(
            N_("The email is not scheduled: it is {status}."), status=detail.message.status
        )
    await service.cancel_message(
        session=session, account_id=principal.account_id, public_id=public_id
    )
    data = {"succeeded": 1, "schedule_id": public_id, "email_id": public_id}
    return json_response(envelope(request, data))


@router.post("/search", response_model=EmailSearchEnvelope, responses=ERRORS, deprecated=True)
async def search_emails(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: EmailSearchRequest | None = None,
) -> Response:
    """Sent (and queued) emails, newest first; ``continue_token`` pages on.
    Deprecated by SMTP2GO in favour of ``/activity/search``."""
    query = body or EmailSearchRequest()
    found: list[Message]
    token: str | None = None
    if query.search_email_id is not None:
        try:
            detail = await service.get_message(
                session=session, account_id=principal.account_id, public_id=query.search_email_id
            )
            found = [detail.message]
        except NotFound:
            found = []
    else:
        before_id = None
        if query.continue_token:
            before_id = decode_cursor(SEARCH_CURSOR, query.continue_token, "continue_token")
        page = await service.list_messages(
            session=session,
            account_id=principal.account_id,
            limit=query.limit or SEARCH_LIMIT,
            before_id=before_id,
            recipient=_recipient_filter(query.search_recipient),
            subject_contains=query.search_subject,
            sender_contains=query.search_sender,
            since=parse_instant(query.start_date, "start_date") if query.start_date else None,
            until=parse_instant(query.end_date, "end_date") if query.end_date else None,
        )
        found = page.items
        if page.has_more and found:
            token = encode_cursor(SEARCH_CURSOR, found[-1].id)
    recipients = await service.recipients_of(session=session, message_ids=[m.id for m in found])
    emails = [mapping.found_out(m, recipients[m.id]) for m in found]
    data = {"emails": emails, "count": len(emails), "continue_token": token}
    return json_response(envelope(request, data))
