"""``/api/v1/events``: what happened to this account's mail, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import LanguageDep, SessionDep, require
from mailgate.api.messages_common import parse_instant
from mailgate.api.native import mapping_events as mapping
from mailgate.api.native.envelope import listing
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_events import EventListEnvelope
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid
from mailgate.services import activity as service
from mailgate.services.accounts import Principal
from mailgate.services.providers import public_ids_of
from mailgate.validation import check_email

router = APIRouter(prefix="/events", tags=["native: events"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.EVENTS_READ))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 429)
}


@router.get("", response_model=EventListEnvelope, responses=ERRORS)
async def list_events(
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
    cursor: str | None = None,
    types: Annotated[
        list[str] | None, Query(alias="type", description="Repeat it or separate by commas.")
    ] = None,
    message_id: Annotated[str | None, Query(max_length=64)] = None,
    recipient: Annotated[str | None, Query(description="Exactly as it was sent to.")] = None,
    since: Annotated[str | None, Query(description="ISO 8601; at or after.")] = None,
    until: Annotated[str | None, Query(description="ISO 8601; before.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Events (processed, delivered, deferred, bounce, reject, failed, cancelled, spam,
    unsubscribe, open, click), newest first, with cursor pagination."""
    if recipient is not None:
        try:
            recipient = check_email(recipient)
        except ValueError as exc:
            raise Invalid.field("recipient", str(exc), "invalid_email") from exc
    filters = service.EventFilter(
        since=parse_instant(since, "since") if since else None,
        until=parse_instant(until, "until") if until else None,
        kinds=mapping.kinds_filter(types or ()),
        message_public_id=message_id,
        recipient=recipient,
    )
    page = await service.search_events(
        session=session,
        account_id=principal.account_id,
        filters=filters,
        limit=limit,
        before_id=mapping.decode_cursor(cursor) if cursor else None,
    )
    providers = await public_ids_of(
        session=session,
        account_id=principal.account_id,
        ids=[item.event.provider_id for item in page.items],
    )
    items = [mapping.event_out(item, providers, language) for item in page.items]
    last_id = page.items[-1].event.id if page.items else None
    return listing(
        request, items, has_more=page.has_more, last_id=last_id, cursor=mapping.encode_cursor
    )
