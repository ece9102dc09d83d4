"""``/api/v2/mail/providers``: SMTP service provider connections (the Back Office document).

The document's curl commands send JSON as ``application/x-www-form-urlencoded``, so bodies
are read as JSON whatever their Content-Type. A GET to the collection always lists, even
with a body (the document prints its create command as ``--request GET``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import JSONResponse, Response

from mailgate.api.backoffice import mapping
from mailgate.api.backoffice.schemas import (
    ErrorEnvelope,
    ProviderCreate,
    ProviderUpdate,
    SmtpProvider,
)
from mailgate.api.deps import CtxDep, LanguageDep, SessionDep, require
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid
from mailgate.services import providers as service
from mailgate.services.accounts import Principal
from mailgate.store.models import Provider

router = APIRouter(
    prefix="/providers", tags=["back office: mail providers"], route_class=JsonAnyContentTypeRoute
)

Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]
ProviderId = Annotated[int, Path(alias="providerId", description="The identifier of a connection.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 413, 422, 429)
}


async def _provider(session: SessionDep, principal: Principal, provider_id: int) -> Provider:
    return await service.get_provider(
        session=session, account_id=principal.account_id, ref=provider_id
    )


@router.get("", response_model=list[SmtpProvider], responses=ERRORS)
async def list_providers(
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> JSONResponse:
    """A JSON array of connections, oldest first. Any request body is ignored."""
    found = await service.list_providers(
        session=session, account_id=principal.account_id, limit=limit, offset=offset
    )
    return JSONResponse([mapping.provider_out(p, language=language) for p in found.items])


@router.get("/{providerId}", response_model=SmtpProvider, responses=ERRORS)
async def get_provider(
    provider_id: ProviderId, session: SessionDep, principal: Reader, language: LanguageDep
) -> JSONResponse:
    """One connection."""
    provider = await _provider(session, principal, provider_id)
    return JSONResponse(mapping.provider_out(provider, language=language))


@router.get(
    "/{providerId}/status",
    status_code=204,
    response_class=Response,
    responses={**ERRORS, 204: {"description": "The connection works."}},
)
async def validate_provider(
    provider_id: ProviderId, ctx: CtxDep, session: SessionDep, principal: Writer
) -> Response:
    """Connect, secure and authenticate for real, without sending; 204 when it all works.

    A failure is a 422 naming what failed (``smtp_auth_error``, ``smtp_connection_error``,
    ``smtp_tls_error``). Either way the outcome is recorded on the connection (``status``,
    ``statusReason``, ``lastTestedAt``). It needs ``providers:write``, as testing does on
    every surface: it opens a connection with the stored password and records the outcome.
    """
    provider = await _provider(session, principal, provider_id)
    outcome = await service.test_provider(
        session=session, box=ctx.box, settings=ctx.settings, provider=provider
    )
    if outcome.error is not None:
        raise outcome.error
    return Response(status_code=204)


@router.post("", status_code=201, response_model=SmtpProvider, responses=ERRORS)
async def create_provider(
    body: ProviderCreate,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
    language: LanguageDep,
) -> JSONResponse:
    """Configure a connection (201 with the SMTP Service Provider object)."""
    try:
        provider = await service.create_provider(
            session=session,
            box=ctx.box,
            account_id=principal.account_id,
            changes=mapping.to_changes(body, partial=False),
        )
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
    return JSONResponse(mapping.provider_out(provider, language=language), status_code=201)


@router.patch("/{providerId}", response_model=SmtpProvider, responses=ERRORS)
async def update_provider(
    provider_id: ProviderId,
    body: ProviderUpdate,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
    language: LanguageDep,
) -> JSONResponse:
    """Change the fields sent; every other field keeps its value."""
    provider = await _provider(session, principal, provider_id)
    try:
        provider = await service.update_provider(
            session=session,
            box=ctx.box,
            provider=provider,
            changes=mapping.to_changes(body, partial=True),
        )
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
    return JSONResponse(mapping.provider_out(provider, language=language))


@router.delete("/{providerId}", status_code=204, response_class=Response, responses=ERRORS)
async def delete_provider(
    provider_id: ProviderId, session: SessionDep, principal: Writer
) -> Response:
    """Delete a connection; 204 with no body."""
    provider = await _provider(session, principal, provider_id)
    await service.delete_provider(session=session, provider=provider)
    return Response(status_code=204)
