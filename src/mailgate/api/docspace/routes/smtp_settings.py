"""``/api/2.0/smtpsettings/smtp``: the portal's one SMTP setting, which is the account's
default provider (the DocSpace "Manage SMTP settings" document)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from mailgate.api.deps import CtxDep, LanguageDep, SessionDep, require
from mailgate.api.docspace import mapping
from mailgate.api.docspace.envelope import wrap
from mailgate.api.docspace.schemas import (
    ErrorWrapper,
    SmtpOperationStatusWrapper,
    SmtpSettingsIn,
    SmtpSettingsWrapper,
)
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid, NotFound
from mailgate.i18n import N_
from mailgate.services import providers as service
from mailgate.services.accounts import Principal
from mailgate.services.providers import ProviderChanges
from mailgate.services.smtp_test_jobs import latest_job

router = APIRouter(
    prefix="/smtpsettings/smtp", tags=["docspace: smtp settings"], route_class=MailgateRoute
)

Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorWrapper} for code in (400, 401, 403, 404, 413, 429)
}


@router.get("", response_model=SmtpSettingsWrapper, responses=ERRORS)
async def get_smtp_settings(
    request: Request, ctx: CtxDep, session: SessionDep, principal: Reader
) -> Response:
    """The current SMTP settings: the default provider, else the installation's defaults."""
    provider = await service.get_default_provider(session=session, account_id=principal.account_id)
    if provider is None:
        return json_response(wrap(request, mapping.defaults_out(ctx.settings)))
    return json_response(wrap(request, mapping.settings_out(provider)))


@router.post("", response_model=SmtpSettingsWrapper, responses=ERRORS)
async def save_smtp_settings(
    body: SmtpSettingsIn, request: Request, ctx: CtxDep, session: SessionDep, principal: Writer
) -> Response:
    """Save the settings into the default provider (created when there is none). No connection
    is made; an empty password with ``enableAuth`` keeps the stored one."""
    provider = await service.get_default_provider(session=session, account_id=principal.account_id)
    has_password = provider is not None and provider.password_encrypted is not None
    changes = mapping.to_changes(body, has_stored_password=has_password, create=provider is None)
    try:
        if provider is None:
            provider = await service.create_provider(
                session=session, box=ctx.box, account_id=principal.account_id, changes=changes
            )
        else:
            provider = await service.update_provider(
                session=session, box=ctx.box, provider=provider, changes=changes
            )
    except Invalid as exc:
        raise exc.renamed(mapping.DOMAIN_TO_REQUEST) from exc
    return json_response(wrap(request, mapping.settings_out(provider)))


@router.delete("", response_model=SmtpSettingsWrapper, responses=ERRORS)
async def reset_smtp_settings(
    request: Request, ctx: CtxDep, session: SessionDep, principal: Writer
) -> Response:
    """Back to the installation's defaults: the default provider stops being the default
    (it stays, on every other surface)."""
    provider = await service.get_default_provider(session=session, account_id=principal.account_id)
    if provider is not None:
        not_default = ProviderChanges(is_default=False)
        await service.update_provider(
            session=session, box=ctx.box, provider=provider, changes=not_default
        )
    return json_response(wrap(request, mapping.defaults_out(ctx.settings)))


@router.get("/test", response_model=SmtpOperationStatusWrapper, responses=ERRORS)
async def test_smtp_settings(
    request: Request, ctx: CtxDep, session: SessionDep, principal: Writer, language: LanguageDep
) -> Response:
    """Queue a test mail to the caller's address through the saved settings; while a test
    runs, the same job is returned. Failures show in the job's ``error``."""
    job = await ctx.smtp_tests.start(
        session=session,
        account_id=principal.account_id,
        recipient=principal.account_email,
        fallback=partial(mapping.installation_fallback, ctx.settings),
    )
    return json_response(wrap(request, mapping.job_out(job, language=language)))


@router.get("/test/status", response_model=SmtpOperationStatusWrapper, responses=ERRORS)
async def smtp_test_status(
    request: Request, session: SessionDep, principal: Reader, language: LanguageDep
) -> Response:
    """The state of the latest test."""
    job = await latest_job(session=session, account_id=principal.account_id)
    if job is None:
        raise NotFound(N_("No SMTP test has been run yet."))
    return json_response(wrap(request, mapping.job_out(job, language=language)))
