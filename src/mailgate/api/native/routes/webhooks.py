"""``/api/v1/webhooks``: endpoints events are POSTed to, their secrets and delivery logs.

Payloads are the native schema (see webhooks.payloads and the README); requests are signed
per Standard Webhooks. The ``secret`` is answered at creation and rotation, never again.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import LanguageDep, SessionDep, require
from mailgate.api.fields import decode_cursor, encode_cursor
from mailgate.api.native import mapping_webhooks as mapping
from mailgate.api.native.envelope import IdempotencyDep, envelope, listing
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_webhooks import (
    DeliveryEnvelope,
    DeliveryListEnvelope,
    WebhookCreate,
    WebhookDeletedEnvelope,
    WebhookEnvelope,
    WebhookListEnvelope,
    WebhookUpdate,
    WebhookWithSecretEnvelope,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.api.webhooks_common import WebhookSettingsDep
from mailgate.domain import Permission
from mailgate.services import webhooks as service
from mailgate.services.accounts import Principal
from mailgate.webhooks.payloads import Flavour

router = APIRouter(prefix="/webhooks", tags=["native: webhooks"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.WEBHOOKS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.WEBHOOKS_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}


@router.post("", status_code=201, response_model=WebhookWithSecretEnvelope, responses=ERRORS)
async def create_webhook(
    body: WebhookCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """Add a webhook. The answer carries its signing ``secret``, shown this once."""

    async def produce() -> dict[str, Any]:
        created = await service.create_webhook(
            session=session,
            account_id=principal.account_id,
            url=body.url,
            event_types=body.events,
            description=body.description,
            flavour=Flavour.NATIVE,
            enabled=body.enabled,
            settings=settings,
        )
        return envelope(
            request, mapping.webhook_out(created.webhook, language, secret=created.secret)
        )

    return await idempotency.respond(principal, 201, produce, keep=mapping.without_secret)


@router.get("", response_model=WebhookListEnvelope, responses=ERRORS)
async def list_webhooks(
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Webhooks, oldest first, with cursor pagination."""
    rows, has_more = await service.list_webhooks(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        after_id=decode_cursor(mapping.WEBHOOK_CURSOR, cursor, "cursor") if cursor else None,
    )
    return listing(
        request,
        [mapping.webhook_out(row, language) for row in rows],
        has_more=has_more,
        last_id=rows[-1].id if rows else None,
        cursor=partial(encode_cursor, mapping.WEBHOOK_CURSOR),
    )


@router.get("/{webhook_id}", response_model=WebhookEnvelope, responses=ERRORS)
async def get_webhook(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
) -> Response:
    """One webhook (never its secret)."""
    row = await service.get_webhook(
        session=session, account_id=principal.account_id, ref=webhook_id
    )
    return json_response(envelope(request, mapping.webhook_out(row, language)))


@router.patch("/{webhook_id}", response_model=WebhookEnvelope, responses=ERRORS)
async def update_webhook(
    webhook_id: str,
    body: WebhookUpdate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """Change the fields sent. ``enabled: false`` gives up what is pending (replayable);
    ``enabled: true`` starts the failure count over."""

    async def produce() -> dict[str, Any]:
        row = await service.get_webhook(
            session=session, account_id=principal.account_id, ref=webhook_id
        )
        row = await service.update_webhook(
            session=session, row=row, changes=mapping.to_changes(body), settings=settings
        )
        return envelope(request, mapping.webhook_out(row, language))

    return await idempotency.respond(principal, 200, produce)


@router.delete("/{webhook_id}", response_model=WebhookDeletedEnvelope, responses=ERRORS)
async def delete_webhook(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Remove a webhook and its delivery log; nothing more is sent to it."""

    async def produce() -> dict[str, Any]:
        row = await service.get_webhook(
            session=session, account_id=principal.account_id, ref=webhook_id
        )
        public_id = row.public_id
        await service.delete_webhook(session=session, row=row)
        return envelope(request, {"deleted": True, "id": public_id})

    return await idempotency.respond(principal, 200, produce)


@router.post(
    "/{webhook_id}/rotate-secret", response_model=WebhookWithSecretEnvelope, responses=ERRORS
)
async def rotate_secret(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """A new signing secret, shown this once. Until ``previous_secret_valid_until`` every
    request carries a signature with each secret, so receivers can switch at leisure."""

    async def produce() -> dict[str, Any]:
        row = await service.get_webhook(
            session=session, account_id=principal.account_id, ref=webhook_id
        )
        rotated = await service.rotate_secret(session=session, row=row, settings=settings)
        return envelope(
            request, mapping.webhook_out(rotated.webhook, language, secret=rotated.secret)
        )

    return await idempotency.respond(principal, 200, produce, keep=mapping.without_secret)


@router.post("/{webhook_id}/enable", response_model=WebhookEnvelope, responses=ERRORS)
async def enable_webhook(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    language: LanguageDep,
) -> Response:
    """Turn a webhook on again (after it was disabled for failing); its failure count starts
    over. Deliveries given up meanwhile can be replayed."""
    row = await service.get_webhook(
        session=session, account_id=principal.account_id, ref=webhook_id
    )
    row = await service.enable_webhook(session=session, row=row)
    return json_response(envelope(request, mapping.webhook_out(row, language)))


@router.post(
    "/{webhook_id}/test", status_code=202, response_model=DeliveryEnvelope, responses=ERRORS
)
async def test_webhook(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """Queue a made-up ``delivered`` event marked ``"test": true``; follow it in the log."""
    row = await service.get_webhook(
        session=session, account_id=principal.account_id, ref=webhook_id
    )
    delivery = await service.send_ping(session=session, webhook=row, settings=settings)
    return json_response(envelope(request, mapping.delivery_out(delivery, language)), 202)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryListEnvelope, responses=ERRORS)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Literal["pending", "delivered", "failed"] | None = None,
) -> Response:
    """The webhook's delivery log, newest first, with cursor pagination."""
    row = await service.get_webhook(
        session=session, account_id=principal.account_id, ref=webhook_id
    )
    rows, has_more = await service.list_deliveries(
        session=session,
        webhook=row,
        limit=limit,
        before_id=decode_cursor(mapping.DELIVERY_CURSOR, cursor, "cursor") if cursor else None,
        status=status,
    )
    return listing(
        request,
        [mapping.delivery_out(delivery, language) for delivery in rows],
        has_more=has_more,
        last_id=rows[-1].id if rows else None,
        cursor=partial(encode_cursor, mapping.DELIVERY_CURSOR),
    )


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryEnvelope, responses=ERRORS
)
async def get_delivery(
    webhook_id: str,
    delivery_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
) -> Response:
    """One delivery: its status, attempts, last answer and body."""
    row = await service.get_webhook(
        session=session, account_id=principal.account_id, ref=webhook_id
    )
    delivery = await service.get_delivery(session=session, webhook=row, ref=delivery_id)
    return json_response(envelope(request, mapping.delivery_out(delivery, language)))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryEnvelope,
    responses=ERRORS,
)
async def replay_delivery(
    webhook_id: str,
    delivery_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    language: LanguageDep,
    settings: WebhookSettingsDep,
) -> Response:
    """Send a delivery again (same ``webhook-id`` and body) with a fresh retry window."""
    row = await service.get_webhook(
        session=session, account_id=principal.account_id, ref=webhook_id
    )
    delivery = await service.replay_delivery(
        session=session, webhook=row, ref=delivery_id, settings=settings
    )
    return json_response(envelope(request, mapping.delivery_out(delivery, language)), 202)
