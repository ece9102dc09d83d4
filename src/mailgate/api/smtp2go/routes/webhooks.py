"""``/v3/webhook/add|edit|remove|view``: webhooks whose payloads are SMTP2GO's event objects.

Requests are signed per Standard Webhooks as every Mailgate webhook is (SMTP2GO itself does
not sign); ``add`` answers the signing ``secret`` once. A webhook is named by SMTP2GO's
numeric ``id`` (``webhook_id`` is accepted too, as is Mailgate's ``whk_`` id).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.deps import LanguageDep, SessionDep
from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping_webhooks as mapping
from mailgate.api.smtp2go.auth import WebhookReader, WebhookWriter
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import ErrorEnvelope
from mailgate.api.smtp2go.schemas_webhooks import (
    WebhookAddedEnvelope,
    WebhookEnvelope,
    WebhookLookup,
    WebhookRemovedEnvelope,
    WebhookRequest,
    WebhookViewEnvelope,
)
from mailgate.api.webhooks_common import WebhookSettingsDep
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.services import webhooks as service
from mailgate.webhooks.payloads import Flavour

router = APIRouter(
    prefix="/webhook", tags=["smtp2go: webhooks"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 402, 403, 404, 429)
}


@router.post("/view", response_model=WebhookViewEnvelope, responses=ERRORS)
async def view_webhooks(
    request: Request,
    session: SessionDep,
    principal: WebhookReader,
    language: LanguageDep,
    body: WebhookLookup | None = None,
) -> Response:
    """Every webhook of the account, or the one named by ``id``."""
    ref = mapping.reference(body or WebhookLookup())
    if ref is not None:
        rows = [
            await service.find_webhook(session=session, account_id=principal.account_id, ref=ref)
        ]
    else:
        rows, _ = await service.list_webhooks(
            session=session, account_id=principal.account_id, limit=None
        )
    return json_response(envelope(request, [mapping.webhook_out(row, language) for row in rows]))


@router.post("/add", response_model=WebhookAddedEnvelope, responses=ERRORS)
async def add_webhook(
    body: WebhookRequest,
    request: Request,
    session: SessionDep,
    principal: WebhookWriter,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """Add a webhook for ``events`` (SMTP2GO's names; none: every email event)."""
    if not body.url:
        raise Invalid.field("url", N_("This field is required."), "required")
    mapping.check_options(body)
    created = await service.create_webhook(
        session=session,
        account_id=principal.account_id,
        url=body.url,
        event_types=mapping.event_types(body.events),
        description=body.description,
        flavour=Flavour.SMTP2GO,
        enabled=body.enabled is not False,
        settings=settings,
    )
    data = mapping.webhook_out(created.webhook, language, secret=created.secret)
    return json_response(envelope(request, data))


@router.post("/edit", response_model=WebhookEnvelope, responses=ERRORS)
async def edit_webhook(
    body: WebhookRequest,
    request: Request,
    session: SessionDep,
    principal: WebhookWriter,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """Change what is given (``url``, ``events``, ...); the rest stays."""
    ref = mapping.required_reference(body)
    mapping.check_options(body)
    changes = mapping.to_changes(body)
    row = await service.find_webhook(session=session, account_id=principal.account_id, ref=ref)
    row = await service.update_webhook(session=session, row=row, changes=changes, settings=settings)
    return json_response(envelope(request, mapping.webhook_out(row, language)))


@router.post("/remove", response_model=WebhookRemovedEnvelope, responses=ERRORS)
async def remove_webhook(
    body: WebhookLookup,
    request: Request,
    session: SessionDep,
    principal: WebhookWriter,
) -> Response:
    """Remove a webhook; nothing more is sent to it."""
    ref = mapping.required_reference(body)
    row = await service.find_webhook(session=session, account_id=principal.account_id, ref=ref)
    removed = {"id": row.id, "webhook_id": row.public_id}
    await service.delete_webhook(session=session, row=row)
    return json_response(envelope(request, removed))
