"""``/api/v1/templates``: message templates (subject, HTML, text) and their previews."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep, require
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.native import mapping_templates as mapping
from mailgate.api.native.envelope import IdempotencyDep, envelope, listing
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_templates import (
    TemplateCreate,
    TemplateDeletedEnvelope,
    TemplateEnvelope,
    TemplateListEnvelope,
    TemplatePreviewEnvelope,
    TemplatePreviewRequest,
    TemplateUpdate,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.services import templates as service
from mailgate.services.accounts import Principal

router = APIRouter(prefix="/templates", tags=["native: templates"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.TEMPLATES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.TEMPLATES_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}
Search = Annotated[
    str | None,
    Query(max_length=255, description="In the name, id, subject or a tag (case-insensitive)."),
]


@router.post("", status_code=201, response_model=TemplateEnvelope, responses=ERRORS)
async def create_template(
    body: TemplateCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Create a template. A part that does not compile is a 400 naming its line; a name the
    account uses already is a 409."""

    async def produce() -> dict[str, Any]:
        row = await service.create_template(
            session=session,
            account_id=principal.account_id,
            changes=mapping.to_changes(body, partial=False),
        )
        return envelope(request, mapping.template_out(row))

    return await idempotency.respond(principal, 201, produce)


@router.get("", response_model=TemplateListEnvelope, responses=ERRORS)
async def list_templates(
    request: Request,
    session: SessionDep,
    principal: Reader,
    q: Search = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Templates, oldest first, with cursor pagination; ``q`` searches."""
    page = await service.list_templates(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        after_id=decode_cursor(mapping.TEMPLATE_CURSOR, cursor, "cursor") if cursor else None,
        terms=[q.strip()] if q and q.strip() else [],
    )
    items = [mapping.template_list_item(row) for row in page.items]
    last_id = page.items[-1].id if page.items else None
    return listing(
        request,
        items,
        has_more=page.has_more,
        last_id=last_id,
        cursor=partial(encode_cursor, mapping.TEMPLATE_CURSOR),
    )


@router.get("/{template_id}", response_model=TemplateEnvelope, responses=ERRORS)
async def get_template(
    template_id: str, request: Request, session: SessionDep, principal: Reader
) -> Response:
    """One template with its sources and sample data."""
    row = await service.get_template(
        session=session, account_id=principal.account_id, ref=template_id
    )
    return json_response(envelope(request, mapping.template_out(row)))


@router.patch("/{template_id}", response_model=TemplateEnvelope, responses=ERRORS)
async def update_template(
    template_id: str,
    body: TemplateUpdate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Change the fields sent; ``null`` empties a part, the sample data or the tags."""

    async def produce() -> dict[str, Any]:
        row = await service.get_template(
            session=session, account_id=principal.account_id, ref=template_id
        )
        row = await service.update_template(
            session=session, row=row, changes=mapping.to_changes(body, partial=True)
        )
        return envelope(request, mapping.template_out(row))

    return await idempotency.respond(principal, 200, produce)


@router.delete("/{template_id}", response_model=TemplateDeletedEnvelope, responses=ERRORS)
async def delete_template(
    template_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Delete a template; mail already accepted with it is not affected."""

    async def produce() -> dict[str, Any]:
        row = await service.get_template(
            session=session, account_id=principal.account_id, ref=template_id
        )
        public_id = row.public_id
        await service.delete_template(session=session, row=row)
        return envelope(request, {"deleted": True, "id": public_id})

    return await idempotency.respond(principal, 200, produce)


@router.post("/{template_id}/preview", response_model=TemplatePreviewEnvelope, responses=ERRORS)
async def preview_template(
    template_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    body: TemplatePreviewRequest | None = None,
) -> Response:
    """Render the template with ``data``, or with its sample data when none is given."""
    row = await service.get_template(
        session=session, account_id=principal.account_id, ref=template_id
    )
    rendered = await service.preview_template(row, body.data if body is not None else None)
    return json_response(envelope(request, mapping.preview_out(rendered)))
