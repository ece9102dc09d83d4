"""``/v3/smtp/...``, also served as ``/v3/users/smtp/...`` (SMTP2GO's current paths): the
relay's SMTP users, named by ``username``.

``add`` generates a password when none is given (or ``""``) and answers it once in
``email_password``; every other answer has ``email_password: null``, as only a hash is kept.
``edit`` (POST) replaces the description and the custom rate limit (SMTP2GO's default: off)
and changes the rest as given; ``patch`` (PATCH, on ``/patch`` and ``/edit``) changes only
what is given. Neither touches the password unless ``email_password`` is sent (``""``: a
new one is generated and answered), nor Mailgate's own ``allowed_senders`` unless sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_smtp_users as mapping
from mailgate.api.smtp2go.auth import SmtpUserReader, SmtpUserWriter
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_smtp_users import (
    SmtpUserLookup,
    SmtpUserPatchedEnvelope,
    SmtpUserRequest,
    SmtpUserResultsEnvelope,
    SmtpUserViewEnvelope,
)
from mailgate.errors import Invalid, NotFound
from mailgate.i18n import N_
from mailgate.services import smtp_users as service
from mailgate.services.accounts import Principal
from mailgate.services.smtp_users import SavedSmtpUser
from mailgate.store.models import SmtpUser

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 402, 403, 404, 429)
}


def _username(value: str | None) -> str:
    if not value:
        raise Invalid.field("username", N_("This field is required."), "required")
    return value


async def _user(session: SessionDep, principal: Principal, username: str | None) -> SmtpUser:
    return await service.find_smtp_user(
        session=session, account_id=principal.account_id, username=_username(username)
    )


def _out(saved: SavedSmtpUser) -> dict[str, Any]:
    return mapping.smtp_user_out(saved.user, generated_password=saved.generated_password)


async def add_smtp_user(
    body: SmtpUserRequest, request: Request, session: SessionDep, principal: SmtpUserWriter
) -> Response:
    """Add an SMTP user; without ``email_password`` one is generated and answered once."""
    _username(body.username)
    changes = mapping.smtp_user_changes(body, mode=mapping.Mode.ADD)
    try:
        saved = await service.create_smtp_user(
            session=session, account_id=principal.account_id, changes=changes
        )
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
    return json_response(envelope(request, {"results": [_out(saved)]}))


async def _change(
    body: SmtpUserRequest, session: SessionDep, principal: Principal, mode: mapping.Mode
) -> SavedSmtpUser:
    user = await _user(session, principal, body.username)
    changes = mapping.smtp_user_changes(body, mode=mode, current=user)
    try:
        return await service.update_smtp_user(session=session, user=user, changes=changes)
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc


async def edit_smtp_user(
    body: SmtpUserRequest, request: Request, session: SessionDep, principal: SmtpUserWriter
) -> Response:
    """Edit an SMTP user: description and custom rate limit as sent (omitted: none)."""
    saved = await _change(body, session, principal, mapping.Mode.EDIT)
    return json_response(envelope(request, {"results": [_out(saved)]}))


async def patch_smtp_user(
    body: SmtpUserRequest, request: Request, session: SessionDep, principal: SmtpUserWriter
) -> Response:
    """Change only what is sent. SMTP2GO answers a patch with the list itself as ``data``."""
    saved = await _change(body, session, principal, mapping.Mode.PATCH)
    return json_response(envelope(request, [_out(saved)]))


async def remove_smtp_user(
    body: SmtpUserLookup, request: Request, session: SessionDep, principal: SmtpUserWriter
) -> Response:
    """Remove an SMTP user; the answer shows it as it was."""
    user = await _user(session, principal, body.username)
    removed = mapping.smtp_user_out(user)
    await service.delete_smtp_user(session=session, user=user)
    return json_response(envelope(request, {"results": [removed]}))


async def view_smtp_users(
    request: Request,
    session: SessionDep,
    principal: SmtpUserReader,
    body: SmtpUserLookup | None = None,
) -> Response:
    """Every SMTP user of the account, or the one named by ``username`` (none: empty list)."""
    query = body or SmtpUserLookup()
    users: list[SmtpUser]
    if query.username:
        try:
            users = [await _user(session, principal, query.username)]
        except NotFound:
            users = []
    else:
        page = await service.list_smtp_users(
            session=session, account_id=principal.account_id, limit=None
        )
        users = page.items
    results = [mapping.smtp_user_out(user) for user in users]
    return json_response(envelope(request, mapping.view_data(results)))


def _router(prefix: str, tag: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[tag], route_class=JsonAnyContentTypeRoute)
    routes: list[tuple[str, str, Callable[..., Any], type]] = [
        ("/add", "POST", add_smtp_user, SmtpUserResultsEnvelope),
        ("/edit", "POST", edit_smtp_user, SmtpUserResultsEnvelope),
        ("/edit", "PATCH", patch_smtp_user, SmtpUserPatchedEnvelope),
        ("/patch", "PATCH", patch_smtp_user, SmtpUserPatchedEnvelope),
        ("/remove", "POST", remove_smtp_user, SmtpUserResultsEnvelope),
        ("/view", "POST", view_smtp_users, SmtpUserViewEnvelope),
    ]
    for path, method, endpoint, model in routes:
        router.add_api_route(
            path, endpoint, methods=[method], response_model=model, responses=ERRORS
        )
    return router


router = _router("/smtp", "smtp2go: smtp users")
users_router = _router("/users/smtp", "smtp2go: smtp users (current paths)")
