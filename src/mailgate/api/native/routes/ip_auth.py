"""``/api/v1/ip-auth``: networks whose clients relay without SMTP AUTH, as this account."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep, require
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.native import mapping_smtp_users as mapping
from mailgate.api.native.envelope import IdempotencyDep, envelope, listing
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_smtp_users import (
    DeletedEnvelope,
    NetworkCreate,
    NetworkEnvelope,
    NetworkListEnvelope,
    NetworkUpdate,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.services import ip_auth as service
from mailgate.services.accounts import Principal

router = APIRouter(prefix="/ip-auth", tags=["native: ip authentication"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.IP_AUTH_READ))]
Writer = Annotated[Principal, Depends(require(Permission.IP_AUTH_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}


@router.post("", status_code=201, response_model=NetworkEnvelope, responses=ERRORS)
async def add_network(
    body: NetworkCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """List an address or network. 409 when it is listed already, or overlaps a network of
    another account (an address relays for one account only)."""

    async def produce() -> dict[str, Any]:
        row = await service.add_network(
            session=session,
            account_id=principal.account_id,
            network=body.network,
            description=body.description,
        )
        return envelope(request, mapping.network_out(row))

    return await idempotency.respond(principal, 201, produce)


@router.get("", response_model=NetworkListEnvelope, responses=ERRORS)
async def list_networks(
    request: Request,
    session: SessionDep,
    principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Listed networks, oldest first, with cursor pagination."""
    page = await service.list_networks(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        after_id=decode_cursor(mapping.NETWORK_CURSOR, cursor, "cursor") if cursor else None,
    )
    items = [mapping.network_out(row) for row in page.items]
    last_id = page.items[-1].id if page.items else None
    return listing(
        request,
        items,
        has_more=page.has_more,
        last_id=last_id,
        cursor=partial(encode_cursor, mapping.NETWORK_CURSOR),
    )


@router.get("/{network_id}", response_model=NetworkEnvelope, responses=ERRORS)
async def get_network(
    network_id: str, request: Request, session: SessionDep, principal: Reader
) -> Response:
    """Get one listed network."""
    row = await service.get_network(
        session=session, account_id=principal.account_id, ref=network_id
    )
    return json_response(envelope(request, mapping.network_out(row)))


@router.patch("/{network_id}", response_model=NetworkEnvelope, responses=ERRORS)
async def update_network(
    network_id: str,
    body: NetworkUpdate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Change the description (``null`` clears it); the network itself is its identity."""

    async def produce() -> dict[str, Any]:
        row = await service.get_network(
            session=session, account_id=principal.account_id, ref=network_id
        )
        if "description" in body.model_fields_set:
            row = await service.update_network(
                session=session, row=row, description=body.description
            )
        return envelope(request, mapping.network_out(row))

    return await idempotency.respond(principal, 200, produce)


@router.delete("/{network_id}", response_model=DeletedEnvelope, responses=ERRORS)
async def remove_network(
    network_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Stop relaying from this network without AUTH."""

    async def produce() -> dict[str, Any]:
        row = await service.get_network(
            session=session, account_id=principal.account_id, ref=network_id
        )
        public_id = row.public_id
        await service.remove_network(session=session, row=row)
        return envelope(request, {"deleted": True, "id": public_id})

    return await idempotency.respond(principal, 200, produce)
