"""``/api/v1/providers``: SMTP sending accounts (the Sendmux management document)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import CtxDep, LanguageDep, SessionDep, require
from mailgate.api.fields import iso
from mailgate.api.native import mapping
from mailgate.api.native.envelope import IdempotencyDep, envelope, listing
from mailgate.api.native.schemas import (
    ErrorEnvelope,
    ProviderCreate,
    ProviderDeletedEnvelope,
    ProviderEnvelope,
    ProviderListEnvelope,
    ProviderTestEnvelope,
    ProviderUpdate,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid
from mailgate.i18n import N_, translate
from mailgate.services import providers as service
from mailgate.services.accounts import Principal

router = APIRouter(prefix="/providers", tags=["native: providers"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}


@router.post("", status_code=201, response_model=ProviderEnvelope, responses=ERRORS)
async def create_provider(
    body: ProviderCreate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
) -> Response:
    """Create an SMTP sending account."""

    async def produce() -> dict[str, Any]:
        try:
            provider = await service.create_provider(
                session=session,
                box=ctx.box,
                account_id=principal.account_id,
                changes=mapping.to_changes(body, partial=False),
            )
        except Invalid as exc:
            raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
        return envelope(request, mapping.provider_out(provider, language=language))

    return await idempotency.respond(principal, 201, produce)


@router.get("", response_model=ProviderListEnvelope, responses=ERRORS)
async def list_providers(
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
    cursor: str | None = None,
    status: str | None = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """List sending accounts, oldest first, with cursor pagination."""
    if type is not None and type != "smtp":
        return json_response(
            envelope(request, [], pagination={"has_more": False, "next_cursor": None})
        )
    page = await service.list_providers(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        after_id=mapping.decode_cursor(cursor) if cursor else None,
        status=mapping.status_filter(status),
    )
    items = [mapping.provider_out(p, language=language, with_variables=False) for p in page.items]
    last_id = page.items[-1].id if page.items else None
    return listing(
        request, items, has_more=page.has_more, last_id=last_id, cursor=mapping.encode_cursor
    )


@router.get("/{provider_id}", response_model=ProviderEnvelope, responses=ERRORS)
async def get_provider(
    provider_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
) -> Response:
    """Get one sending account."""
    provider = await service.get_provider(
        session=session, account_id=principal.account_id, ref=provider_id
    )
    return json_response(envelope(request, mapping.provider_out(provider, language=language)))


@router.patch("/{provider_id}", response_model=ProviderEnvelope, responses=ERRORS)
async def update_provider(
    provider_id: str,
    body: ProviderUpdate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
) -> Response:
    """Change the fields sent; omitted fields keep their values, ``null`` clears optional ones."""

    async def produce() -> dict[str, Any]:
        provider = await service.get_provider(
            session=session, account_id=principal.account_id, ref=provider_id
        )
        try:
            provider = await service.update_provider(
                session=session,
                box=ctx.box,
                provider=provider,
                changes=mapping.to_changes(body, partial=True),
            )
        except Invalid as exc:
            raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
        return envelope(request, mapping.provider_out(provider, language=language))

    return await idempotency.respond(principal, 200, produce)


@router.delete("/{provider_id}", response_model=ProviderDeletedEnvelope, responses=ERRORS)
async def delete_provider(
    provider_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Delete a sending account."""

    async def produce() -> dict[str, Any]:
        provider = await service.get_provider(
            session=session, account_id=principal.account_id, ref=provider_id
        )
        public_id = provider.public_id
        await service.delete_provider(session=session, provider=provider)
        return envelope(request, {"deleted": True, "id": public_id})

    return await idempotency.respond(principal, 200, produce)


@router.post("/{provider_id}/test", response_model=ProviderTestEnvelope, responses=ERRORS)
async def test_provider(
    provider_id: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
) -> Response:
    """Connect, EHLO, TLS and AUTH for real; ``success: false`` says what failed."""

    async def produce() -> dict[str, Any]:
        provider = await service.get_provider(
            session=session, account_id=principal.account_id, ref=provider_id
        )
        outcome = await service.test_provider(
            session=session, box=ctx.box, settings=ctx.settings, provider=provider
        )
        if outcome.error is None:
            message = translate(N_("Connection and authentication succeeded."), language)
        else:
            message = translate(outcome.error.message, language, dict(outcome.error.params))
        data = {
            "success": outcome.success,
            "message": message,
            "latency_ms": outcome.latency_ms,
            "tested_at": iso(outcome.tested_at),
        }
        return envelope(request, data)

    return await idempotency.respond(principal, 200, produce)


async def _set_enabled(
    provider_id: str,
    enabled: bool,
    request: Request,
    session: SessionDep,
    principal: Principal,
    language: str,
) -> dict[str, Any]:
    provider = await service.get_provider(
        session=session, account_id=principal.account_id, ref=provider_id
    )
    provider = await service.set_enabled(session=session, provider=provider, enabled=enabled)
    return envelope(request, mapping.provider_out(provider, language=language))


@router.post("/{provider_id}/activate", response_model=ProviderEnvelope, responses=ERRORS)
async def activate_provider(
    provider_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
) -> Response:
    """Enable a sending account for routing."""
    return await idempotency.respond(
        principal,
        200,
        lambda: _set_enabled(provider_id, True, request, session, principal, language),
    )


@router.post("/{provider_id}/deactivate", response_model=ProviderEnvelope, responses=ERRORS)
async def deactivate_provider(
    provider_id: str,
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
    language: LanguageDep,
) -> Response:
    """Stop routing mail through a sending account."""
    return await idempotency.respond(
        principal,
        200,
        lambda: _set_enabled(provider_id, False, request, session, principal, language),
    )
