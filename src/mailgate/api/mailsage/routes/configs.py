"""``/api/v1/smtp/configs``: SMTP configurations (the MailSage SMTP Management document)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from mailgate.api.deps import CtxDep, SessionDep, require
from mailgate.api.mailsage import mapping
from mailgate.api.mailsage.schemas import (
    Config,
    ConfigCreate,
    ConfigList,
    ConfigUpdate,
    Error,
    Message,
    TestRequest,
    TestSent,
)
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid
from mailgate.services import providers as service
from mailgate.services.accounts import Principal
from mailgate.store.models import Provider

router = APIRouter(prefix="/configs", tags=["mailsage: smtp configs"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]
ConfigId = Annotated[int, Path(alias="id", description="SMTP configuration ID")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Error} for code in (400, 401, 403, 404, 413, 422, 429)
}
# Success messages are part of MailSage's documented contract (clients may compare them):
# always these English words, whatever accept-language says. Error messages are translated.
DELETED = "SMTP configuration deleted successfully"
TEST_SENT = "Test email sent successfully"


async def _config(session: SessionDep, principal: Principal, config_id: int) -> Provider:
    return await service.get_provider(
        session=session, account_id=principal.account_id, ref=config_id
    )


@router.post("", status_code=201, response_model=Config, responses=ERRORS)
async def add_config(
    body: ConfigCreate, ctx: CtxDep, session: SessionDep, principal: Writer
) -> JSONResponse:
    """Create an SMTP configuration (201 with the configuration)."""
    try:
        provider = await service.create_provider(
            session=session,
            box=ctx.box,
            account_id=principal.account_id,
            changes=mapping.to_changes(body, current=None),
        )
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
    return JSONResponse(mapping.config_out(provider), status_code=201)


@router.get("", response_model=ConfigList, responses=ERRORS)
async def list_configs(
    session: SessionDep,
    principal: Reader,
    page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    """The account's configurations, oldest first, a page at a time."""
    found = await service.list_providers(
        session=session,
        account_id=principal.account_id,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return JSONResponse(
        {
            "data": [mapping.config_out(p) for p in found.items],
            "meta": mapping.page_meta(page=page, per_page=per_page, total=found.total),
        }
    )


@router.put("/{id}", response_model=Config, responses=ERRORS)
async def update_config(
    config_id: ConfigId, body: ConfigUpdate, ctx: CtxDep, session: SessionDep, principal: Writer
) -> JSONResponse:
    """Change the fields sent; every other field keeps its value."""
    provider = await _config(session, principal, config_id)
    try:
        provider = await service.update_provider(
            session=session,
            box=ctx.box,
            provider=provider,
            changes=mapping.to_changes(body, current=provider),
        )
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
    return JSONResponse(mapping.config_out(provider))


@router.delete("/{id}", response_model=Message, responses=ERRORS)
async def delete_config(
    config_id: ConfigId, session: SessionDep, principal: Writer
) -> JSONResponse:
    """Delete a configuration."""
    provider = await _config(session, principal, config_id)
    await service.delete_provider(session=session, provider=provider)
    return JSONResponse({"message": DELETED})


@router.post("/{id}/test", response_model=TestSent, responses=ERRORS)
async def test_config(
    config_id: ConfigId,
    body: TestRequest,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
) -> JSONResponse:
    """Send a real test email through the configuration to ``recipient``.

    ``delivery_id`` is the test message's Message-ID, as the recipient's mailbox shows it.
    A failure is the SMTP error (``smtp_auth_error``, ``smtp_connection_error``, ...); the
    outcome is recorded on the provider either way.
    """
    provider = await _config(session, principal, config_id)
    outcome = await service.test_provider(
        session=session,
        box=ctx.box,
        settings=ctx.settings,
        provider=provider,
        recipient=body.recipient,
    )
    if outcome.error is not None:
        raise outcome.error
    message_id = outcome.result.message_id if outcome.result is not None else None
    sent = {"message": TEST_SENT, "delivery_id": message_id or ""}
    return JSONResponse(sent)
