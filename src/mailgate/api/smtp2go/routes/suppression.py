"""``/v3/suppression/add|view|remove``: addresses and domains this account must not send to.

SMTP2GO names the value ``email_address`` (an address or a domain) and the note
``block_description``; the seed document's ``email`` and ``domain`` are accepted too. Adding
a value suppressed already answers ``added: false`` with the entry as it is.
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
from mailgate.api.smtp2go.auth import SuppressionReader, SuppressionWriter
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_engagement import (
    SuppressionAddedEnvelope,
    SuppressionAddRequest,
    SuppressionRemovedEnvelope,
    SuppressionRemoveRequest,
    SuppressionViewEnvelope,
    SuppressionViewRequest,
)
from mailgate.errors import Invalid, Issue, NotFound
from mailgate.i18n import N_
from mailgate.services import suppressions as service
from mailgate.services.suppressions import SuppressionFilter, SuppressionKind, SuppressionReason
from mailgate.store.models import Suppression

router = APIRouter(
    prefix="/suppression", tags=["smtp2go: suppressions"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 402, 403, 404, 429)
}
VIEW_CURSOR: Final = "sv"
VIEW_PAGE: Final = 1000
# The seed document's names say which kind of value they carry; email_address is either.
EXPECTED: Final = {"email": SuppressionKind.EMAIL, "domain": SuppressionKind.DOMAIN}


def _value(body: SuppressionAddRequest | SuppressionRemoveRequest) -> tuple[str, str]:
    """The address or domain, and the field it came in: exactly one of the three."""
    names = ("email_address", "email", "domain")
    sent = [(getattr(body, n), n) for n in names if getattr(body, n) is not None]
    if len(sent) != 1:
        message = N_("Give email_address (an address or a domain).")
        raise Invalid([Issue(n, message, "required") for n in names[:1]])
    return sent[0]


@router.post("/add", response_model=SuppressionAddedEnvelope, responses=ERRORS)
async def add_suppression(
    body: SuppressionAddRequest, request: Request, session: SessionDep, principal: SuppressionWriter
) -> Response:
    """Suppress an address or a whole domain (reason ``manual``)."""
    value, field = _value(body)
    try:
        added = await service.add_suppression(
            session=session,
            account_id=principal.account_id,
            value=value,
            reason=SuppressionReason.MANUAL,
            detail=body.block_description,
            field=field,
            expected=EXPECTED.get(field),
        )
    except Invalid as exc:
        raise exc.renamed({"detail": "block_description"}) from exc
    data = {
        "added": added.created,
        "block_description": added.row.detail or "",
        "email_address": added.row.value,
    }
    return json_response(envelope(request, data))


def _view_filter(query: SuppressionViewRequest) -> SuppressionFilter | None:
    """The filter asked for; None when it can find nothing (only types Mailgate lacks)."""
    words = [
        *([query.suppression_type] if query.suppression_type else []),
        *(query.suppression_types or []),
    ]
    field = "suppression_types" if query.suppression_types else "suppression_type"
    reasons = mapping.suppression_types(words, field)
    if words and not any(reasons):
        return None
    return SuppressionFilter(
        reasons=tuple(r for r in reasons if r is not None),
        contains=query.wildcard or query.recipient,
        since=parse_instant(query.start_date, "start_date") if query.start_date else None,
        until=parse_instant(query.end_date, "end_date") if query.end_date else None,
    )


@router.post("/view", response_model=SuppressionViewEnvelope, responses=ERRORS)
async def view_suppressions(
    request: Request,
    session: SessionDep,
    principal: SuppressionReader,
    body: SuppressionViewRequest | None = None,
) -> Response:
    """Suppressed addresses and domains, newest first (``sort: asc``: oldest first), up to
    1,000 per answer with a ``continue_token``. ``email_address`` checks one value: its own
    entry and, for an address, its domain's."""
    query = body or SuppressionViewRequest()
    rows: list[Suppression]
    token: str | None = None
    total: int
    if query.email_address:
        rows = await service.entries_covering(
            session=session,
            account_id=principal.account_id,
            value=query.email_address,
            field="email_address",
        )
        total = len(rows)
    else:
        if query.sort not in (None, "asc", "desc"):
            raise Invalid.field(
                "sort", N_("Must be one of: {expected}."), "invalid_choice", expected="asc, desc"
            )
        filters = _view_filter(query)
        if filters is None:
            rows, total = [], 0
        else:
            cursor = None
            if query.continue_token:
                cursor = decode_cursor(VIEW_CURSOR, query.continue_token, "continue_token")
            page = await service.list_suppressions(
                session=session,
                account_id=principal.account_id,
                limit=VIEW_PAGE,
                filters=filters,
                cursor_id=cursor,
                ascending=query.sort == "asc",
            )
            rows = page.items
            if page.has_more and rows:
                token = encode_cursor(VIEW_CURSOR, rows[-1].id)
            total = await service.count_suppressions(
                session=session, account_id=principal.account_id, filters=filters
            )
    data = {
        "continue_token": token,
        "results": [mapping.suppression_result(row) for row in rows],
        "total_results": total,
    }
    return json_response(envelope(request, data))


@router.post("/remove", response_model=SuppressionRemovedEnvelope, responses=ERRORS)
async def remove_suppression(
    body: SuppressionRemoveRequest,
    request: Request,
    session: SessionDep,
    principal: SuppressionWriter,
) -> Response:
    """Send to the address or domain again. With ``reasons``, only when its entry has one of
    them; the answer says, per reason asked, whether it was removed."""
    value, field = _value(body)
    asked = [w.strip().lower() for w in body.reasons or []]
    mapping.suppression_types(asked, "reasons")  # unknown words are a 400
    try:
        row = await service.find_suppression(
            session=session, account_id=principal.account_id, value=value, field=field
        )
    except NotFound:
        if not asked:
            raise
        normalized, _ = service.parse_value(value, field)
        items = [{"email_address": normalized, "reason": w, "removed": False} for w in asked]
        return json_response(envelope(request, {"suppressions": items}))
    word = mapping.REASON_TO_TYPE[SuppressionReason(row.reason)]
    suppressed = row.value
    removing = not asked or word in asked
    if removing:
        await service.remove_suppression(session=session, row=row)
    shown = asked or [word]
    items = [
        {"email_address": suppressed, "reason": w, "removed": removing and w == word} for w in shown
    ]
    return json_response(envelope(request, {"suppressions": items}))
