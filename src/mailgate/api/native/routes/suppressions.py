"""``/api/v1/suppressions``: addresses and domains this account must not send to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep, require
from mailgate.api.messages_common import parse_instant
from mailgate.api.native import mapping_suppressions as mapping
from mailgate.api.native.envelope import IdempotencyDep, envelope, listing
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_smtp_users import DeletedEnvelope
from mailgate.api.native.schemas_suppressions import (
    SuppressionCreate,
    SuppressionEnvelope,
    SuppressionListEnvelope,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.services import suppressions as service
from mailgate.services.accounts import Principal
from mailgate.services.suppressions import SuppressionKind, SuppressionReason

router = APIRouter(prefix="/suppressions", tags=["native: suppressions"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.SUPPRESSIONS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.SUPPRESSIONS_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}


@router.post("", status_code=201, response_model=SuppressionEnvelope, responses=ERRORS)
async def add_suppression(
    body: SuppressionCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Suppress an address or a whole domain. 409 when it is suppressed already (remove it
    first to record another reason)."""
    value, field = mapping.value_of(body)

    async def produce() -> dict[str, Any]:
        added = await service.add_suppression(
            session=session,
            account_id=principal.account_id,
            value=value,
            reason=SuppressionReason(body.reason),
            detail=body.detail,
            field=field,
            expected=SuppressionKind(field),
        )
        if not added.created:
            raise service.already_suppressed(added.row)
        return envelope(request, mapping.suppression_out(added.row))

    return await idempotency.respond(principal, 201, produce)


@router.get("", response_model=SuppressionListEnvelope, responses=ERRORS)
async def list_suppressions(
    request: Request,
    session: SessionDep,
    principal: Reader,
    cursor: str | None = None,
    kind: Annotated[str | None, Query(description="email or domain.")] = None,
    reason: Annotated[
        list[str] | None, Query(description="Repeat it or separate by commas.")
    ] = None,
    q: Annotated[str | None, Query(max_length=320, description="Part of the value.")] = None,
    since: Annotated[str | None, Query(description="ISO 8601; added at or after.")] = None,
    until: Annotated[str | None, Query(description="ISO 8601; added before.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Suppressed addresses and domains, newest first, with cursor pagination."""
    page = await service.list_suppressions(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        cursor_id=mapping.decode_cursor(cursor) if cursor else None,
        filters=service.SuppressionFilter(
            kind=mapping.kind_filter(kind),
            reasons=tuple(mapping.reason_filter(reason or ())),
            contains=q,
            since=parse_instant(since, "since") if since else None,
            until=parse_instant(until, "until") if until else None,
        ),
    )
    items = [mapping.suppression_out(row) for row in page.items]
    last_id = page.items[-1].id if page.items else None
    return listing(
        request, items, has_more=page.has_more, last_id=last_id, cursor=mapping.encode_cursor
    )


@router.get("/{ref}", response_model=SuppressionEnvelope, responses=ERRORS)
async def get_suppression(
    ref: str, request: Request, session: SessionDep, principal: Reader
) -> Response:
    """One entry, by its id (``sup_...``) or by the address or domain itself."""
    row = await service.get_suppression(session=session, account_id=principal.account_id, ref=ref)
    return json_response(envelope(request, mapping.suppression_out(row)))


@router.delete("/{ref}", response_model=DeletedEnvelope, responses=ERRORS)
async def remove_suppression(
    ref: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Send to the address or domain again (by id, or by the value itself)."""

    async def produce() -> dict[str, Any]:
        row = await service.get_suppression(
            session=session, account_id=principal.account_id, ref=ref
        )
        public_id = service.public_id(row)
        await service.remove_suppression(session=session, row=row)
        return envelope(request, {"deleted": True, "id": public_id})

    return await idempotency.respond(principal, 200, produce)
