"""``/v3/archive/search`` and ``/v3/archive/view`` (also ``/archive/email``, SMTP2GO's current
name): the stored MIME of this account's mail, until the retention period ends.

An email's ``url`` is its native download, ``GET /api/v1/messages/{id}/raw`` (a key with
``messages:read``). Mail whose body was purged is no longer in the search; viewing it is a
404 that says so.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.messages_common import parse_instant
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_engagement as mapping
from mailgate.api.smtp2go.auth import MessageReader
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_engagement import (
    ArchivedEmailEnvelope,
    ArchiveListEnvelope,
    ArchiveSearchRequest,
    ArchiveViewRequest,
)
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services import archive as service
from mailgate.services.messages import recipients_of
from mailgate.store.models import Message, MessageRecipient

router = APIRouter(
    prefix="/archive", tags=["smtp2go: archive"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 429)
}
CURSOR: Final = "ar"
DEFAULT_LIMIT: Final = 100


def _raw_url(request: Request, message: Message) -> str:
    return str(request.url_for("download_raw", message_id=message.public_id))


def _entry(
    request: Request, message: Message, recipients: list[MessageRecipient], raw: bytes
) -> dict[str, Any]:
    summary = service.summarize(raw)
    return mapping.archived_email(message, recipients, summary, _raw_url(request, message))


@router.post("/search", response_model=ArchiveListEnvelope, responses=ERRORS)
async def search_archive(
    request: Request,
    session: SessionDep,
    principal: MessageReader,
    body: ArchiveSearchRequest | None = None,
) -> Response:
    """Archived emails, newest first, ``limit`` (default 100, at most 5,000) per answer with a
    ``continue_token``."""
    query = body or ArchiveSearchRequest()
    unsupported = [name for name in ("username", "headers") if getattr(query, name)]
    if unsupported:
        text = N_("Mailgate does not support this option; leave it out.")
        raise Invalid([Issue(name, text, "unsupported") for name in unsupported])
    filters = service.ArchiveFilter(
        since=parse_instant(query.start_date, "start_date") if query.start_date else None,
        until=parse_instant(query.end_date, "end_date") if query.end_date else None,
        recipient=query.recipient,
        sender_contains=query.sender,
        envelope_from=query.envelope_from,
        subject_contains=query.subject,
    )
    before_id = None
    if query.continue_token:
        before_id = decode_cursor(CURSOR, query.continue_token, "continue_token")
    found, has_more = await service.search_archive(
        session=session,
        account_id=principal.account_id,
        filters=filters,
        limit=query.limit or DEFAULT_LIMIT,
        before_id=before_id,
    )
    recipients = await recipients_of(session=session, message_ids=[m.id for m in found])
    emails = []
    for message in found:  # one body at a time: messages may be large
        raw = await service.raw_of(session=session, message_id=message.id)
        if raw is not None:  # purged since the search read the row
            emails.append(_entry(request, message, recipients[message.id], raw))
    token = encode_cursor(CURSOR, found[-1].id) if has_more and found else None
    data = {"email_count": len(emails), "emails": emails, "continue_token": token}
    return json_response(envelope(request, data))


async def view_archived(
    body: ArchiveViewRequest, request: Request, session: SessionDep, principal: MessageReader
) -> Response:
    """One archived email by ``email_id``: its headers, attachments and download url."""
    if not body.email_id:
        raise Invalid.field("email_id", N_("This field is required."), "required")
    found = await service.raw_message(
        session=session, account_id=principal.account_id, public_id=body.email_id
    )
    message = found.message
    recipients = await recipients_of(session=session, message_ids=[message.id])
    entry = _entry(request, message, recipients[message.id], found.raw)
    return json_response(envelope(request, entry))


for path in ("/view", "/email"):
    router.add_api_route(
        path,
        view_archived,
        methods=["POST"],
        response_model=ArchivedEmailEnvelope,
        responses=ERRORS,
    )
