"""``/v3/ip_auth/...``: addresses and networks that relay without SMTP AUTH, as this account.

SMTP2GO has no ``add``: a ``patch`` of an ``ip_address`` not listed yet lists it (also served
as ``PATCH /ip_auth/edit``, SMTP2GO's current path). ``ip_address`` may be a network in CIDR
notation; one overlapping another account's network is refused (402).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_smtp_users as mapping
from mailgate.api.smtp2go.auth import IpAuthReader, IpAuthWriter
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_smtp_users import (
    IpAuthLookup,
    IpAuthPatchedEnvelope,
    IpAuthPatchRequest,
    IpAuthResultsEnvelope,
    IpAuthViewEnvelope,
)
from mailgate.errors import Invalid, NotFound
from mailgate.i18n import N_
from mailgate.services import ip_auth as service
from mailgate.store.models import IpAuthNetwork

router = APIRouter(
    prefix="/ip_auth", tags=["smtp2go: ip auth"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 402, 403, 404, 429)
}


def _ip_address(value: str | None) -> str:
    if not value:
        raise Invalid.field("ip_address", N_("This field is required."), "required")
    return value


@router.post("/view", response_model=IpAuthViewEnvelope, responses=ERRORS)
async def view_ip_auth(
    request: Request,
    session: SessionDep,
    principal: IpAuthReader,
    body: IpAuthLookup | None = None,
) -> Response:
    """Every listed entry, or the one given as ``ip_address`` (not listed: an empty list)."""
    query = body or IpAuthLookup()
    rows: list[IpAuthNetwork]
    if query.ip_address:
        try:
            rows = [
                await service.find_network(
                    session=session, account_id=principal.account_id, network=query.ip_address
                )
            ]
        except Invalid as exc:
            raise exc.renamed(mapping.NETWORK_TO_REQUEST) from exc
        except NotFound:
            rows = []
    else:
        page = await service.list_networks(
            session=session, account_id=principal.account_id, limit=None
        )
        rows = page.items
    results = [mapping.ip_auth_out(row) for row in rows]
    return json_response(envelope(request, mapping.view_data(results)))


async def patch_ip_auth(
    body: IpAuthPatchRequest, request: Request, session: SessionDep, principal: IpAuthWriter
) -> Response:
    """List ``ip_address`` or change its ``description``; answers the entry in a list."""
    address = _ip_address(body.ip_address)
    mapping.check_ip_auth_patch(body)
    try:
        row, _ = await service.save_network(
            session=session,
            account_id=principal.account_id,
            network=address,
            description=body.description,
        )
    except Invalid as exc:
        raise exc.renamed(mapping.NETWORK_TO_REQUEST) from exc
    return json_response(envelope(request, [mapping.ip_auth_out(row)]))


router.add_api_route(
    "/patch",
    patch_ip_auth,
    methods=["PATCH"],
    response_model=IpAuthPatchedEnvelope,
    responses=ERRORS,
)
router.add_api_route(
    "/edit",
    patch_ip_auth,
    methods=["PATCH"],
    response_model=IpAuthPatchedEnvelope,
    responses=ERRORS,
)


@router.post("/remove", response_model=IpAuthResultsEnvelope, responses=ERRORS)
async def remove_ip_auth(
    body: IpAuthLookup, request: Request, session: SessionDep, principal: IpAuthWriter
) -> Response:
    """Stop relaying from ``ip_address`` without AUTH; the answer shows the entry removed."""
    try:
        row = await service.find_network(
            session=session,
            account_id=principal.account_id,
            network=_ip_address(body.ip_address),
        )
    except Invalid as exc:
        raise exc.renamed(mapping.NETWORK_TO_REQUEST) from exc
    removed = mapping.ip_auth_out(row)
    await service.remove_network(session=session, row=row)
    return json_response(envelope(request, {"results": [removed]}))
