"""``/v3/template/...``: add, edit, delete, search and view message templates.

A template's ``id`` is its Mailgate id (``tmpl_...``), or the one the caller chose on ``add``
(``new_id`` on ``edit`` changes it). Sending with it: ``template_id`` + ``template_data`` on
``/email/send``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_templates as mapping
from mailgate.api.smtp2go.auth import TemplateReader, TemplateWriter
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_templates import (
    TemplateAddRequest,
    TemplateDeletedEnvelope,
    TemplateEditRequest,
    TemplateLookup,
    TemplateSearchEnvelope,
    TemplateSearchRequest,
    TemplateViewEnvelope,
    TemplateWrittenEnvelope,
)
from mailgate.errors import Invalid
from mailgate.services import templates as service

router = APIRouter(
    prefix="/template", tags=["smtp2go: templates"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 402, 403, 404, 429)
}
DEFAULT_PAGE_SIZE = 100


@router.post("/add", response_model=TemplateWrittenEnvelope, responses=ERRORS)
async def add_template(
    body: TemplateAddRequest, request: Request, session: SessionDep, principal: TemplateWriter
) -> Response:
    """Add a template. A part that does not compile is a 400 naming its line; a name or id
    the account uses already is a 402."""
    try:
        row = await service.create_template(
            session=session,
            account_id=principal.account_id,
            changes=mapping.template_changes(body),
        )
    except Invalid as exc:
        raise exc.renamed(mapping.ADD_NAMES) from exc
    return json_response(envelope(request, mapping.written_out(row)))


@router.post("/edit", response_model=TemplateWrittenEnvelope, responses=ERRORS)
async def edit_template(
    body: TemplateEditRequest, request: Request, session: SessionDep, principal: TemplateWriter
) -> Response:
    """Change the fields given (``null`` or absent: unchanged); ``new_id`` renames the id."""
    row = await service.get_template(
        session=session, account_id=principal.account_id, ref=mapping.lookup_ref(body)
    )
    try:
        row = await service.update_template(
            session=session, row=row, changes=mapping.template_changes(body)
        )
    except Invalid as exc:
        raise exc.renamed(mapping.EDIT_NAMES) from exc
    return json_response(envelope(request, mapping.written_out(row)))


@router.post("/delete", response_model=TemplateDeletedEnvelope, responses=ERRORS)
async def delete_template(
    body: TemplateLookup, request: Request, session: SessionDep, principal: TemplateWriter
) -> Response:
    """Delete a template; ``data`` is a sentence, as SMTP2GO answers."""
    row = await service.get_template(
        session=session, account_id=principal.account_id, ref=mapping.lookup_ref(body)
    )
    public_id = row.public_id
    await service.delete_template(session=session, row=row)
    return json_response(envelope(request, f"Successfully deleted template '{public_id}'"))


@router.post("/view", response_model=TemplateViewEnvelope, responses=ERRORS)
async def view_template(
    body: TemplateLookup, request: Request, session: SessionDep, principal: TemplateReader
) -> Response:
    """One template with its bodies and ``template_variables`` (its sample data)."""
    row = await service.get_template(
        session=session, account_id=principal.account_id, ref=mapping.lookup_ref(body)
    )
    return json_response(envelope(request, mapping.viewed_out(row)))


@router.post("/search", response_model=TemplateSearchEnvelope, responses=ERRORS)
async def search_templates(
    request: Request,
    session: SessionDep,
    principal: TemplateReader,
    body: TemplateSearchRequest | None = None,
) -> Response:
    """Templates matching any of ``search_terms`` (or ``query``) in the name, id, subject or a
    tag, and any of ``tags``; ``page_size`` per page, ``continue_token`` pages on."""
    query = body or TemplateSearchRequest()
    terms, fuzzy = mapping.search_terms(query)
    tags = [tag.strip() for tag in query.tags or () if tag.strip()]
    newest_first = query.sort_direction == "desc"
    after_id = None
    if query.continue_token:
        after_id = decode_cursor(mapping.SEARCH_CURSOR, query.continue_token, "continue_token")
    page = await service.list_templates(
        session=session,
        account_id=principal.account_id,
        limit=query.page_size or DEFAULT_PAGE_SIZE,
        after_id=after_id,
        terms=terms,
        tags=tags,
        exact=not fuzzy,
        newest_first=newest_first,
    )
    total = await service.count_templates(
        session=session, account_id=principal.account_id, terms=terms, tags=tags, exact=not fuzzy
    )
    token = None
    if page.has_more and page.items:
        token = encode_cursor(mapping.SEARCH_CURSOR, page.items[-1].id)
    data = {
        "templates": [mapping.found_out(row) for row in page.items],
        "total_count": total,
        "continue_token": token,
    }
    return json_response(envelope(request, data))
