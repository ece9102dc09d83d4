"""``/api/v1/smtp-users``: logins for the SMTP relay, with their sender and rate rules."""

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
    SmtpUserCreate,
    SmtpUserEnvelope,
    SmtpUserListEnvelope,
    SmtpUserUpdate,
    SmtpUserWrittenEnvelope,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid
from mailgate.services import smtp_users as service
from mailgate.services.accounts import Principal

router = APIRouter(prefix="/smtp-users", tags=["native: smtp users"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.SMTP_USERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.SMTP_USERS_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}


@router.post("", status_code=201, response_model=SmtpUserWrittenEnvelope, responses=ERRORS)
async def create_smtp_user(
    body: SmtpUserCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Create an SMTP user. Without ``password`` one is generated and answered here once, as
    ``generated_password`` (a replay of this request by its Idempotency-Key answers ``null``)."""

    async def produce() -> dict[str, Any]:
        try:
            saved = await service.create_smtp_user(
                session=session,
                account_id=principal.account_id,
                changes=mapping.to_changes(body, partial=False),
            )
        except Invalid as exc:
            raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
        data = mapping.smtp_user_out(saved.user, generated_password=saved.generated_password)
        return envelope(request, data)

    return await idempotency.respond(
        principal, 201, produce, keep=mapping.without_generated_password
    )


@router.get("", response_model=SmtpUserListEnvelope, responses=ERRORS)
async def list_smtp_users(
    request: Request,
    session: SessionDep,
    principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """List SMTP users, oldest first, with cursor pagination."""
    page = await service.list_smtp_users(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        after_id=decode_cursor(mapping.USER_CURSOR, cursor, "cursor") if cursor else None,
    )
    items = [mapping.smtp_user_out(user) for user in page.items]
    last_id = page.items[-1].id if page.items else None
    return listing(
        request,
        items,
        has_more=page.has_more,
        last_id=last_id,
        cursor=partial(encode_cursor, mapping.USER_CURSOR),
    )


@router.get("/{smtp_user_id}", response_model=SmtpUserEnvelope, responses=ERRORS)
async def get_smtp_user(
    smtp_user_id: str, request: Request, session: SessionDep, principal: Reader
) -> Response:
    """Get one SMTP user (never its password)."""
    user = await service.get_smtp_user(
        session=session, account_id=principal.account_id, ref=smtp_user_id
    )
    return json_response(envelope(request, mapping.smtp_user_out(user)))


@router.patch("/{smtp_user_id}", response_model=SmtpUserWrittenEnvelope, responses=ERRORS)
async def update_smtp_user(
    smtp_user_id: str,
    body: SmtpUserUpdate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Change the fields sent; omitted fields keep their values, ``null`` clears optional ones.
    ``generate_password: true`` replaces the password and answers the new one once."""

    async def produce() -> dict[str, Any]:
        user = await service.get_smtp_user(
            session=session, account_id=principal.account_id, ref=smtp_user_id
        )
        try:
            saved = await service.update_smtp_user(
                session=session, user=user, changes=mapping.to_changes(body, partial=True)
            )
        except Invalid as exc:
            raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
        data = mapping.smtp_user_out(saved.user, generated_password=saved.generated_password)
        return envelope(request, data)

    return await idempotency.respond(
        principal, 200, produce, keep=mapping.without_generated_password
    )


@router.delete("/{smtp_user_id}", response_model=DeletedEnvelope, responses=ERRORS)
async def delete_smtp_user(
    smtp_user_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Delete an SMTP user: it can no longer log in."""

    async def produce() -> dict[str, Any]:
        user = await service.get_smtp_user(
            session=session, account_id=principal.account_id, ref=smtp_user_id
        )
        public_id = user.public_id
        await service.delete_smtp_user(session=session, user=user)
        return envelope(request, {"deleted": True, "id": public_id})

    return await idempotency.respond(principal, 200, produce)
