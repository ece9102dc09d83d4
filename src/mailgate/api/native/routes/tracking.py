"""``/api/v1/tracking``: the account's defaults for open and click tracking and for
List-Unsubscribe (per message, ``track_opens``, ``track_clicks`` and ``transactional`` on
``/api/v1/messages`` override them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from mailgate.api.deps import CtxDep, SessionDep, require
from mailgate.api.native.envelope import IdempotencyDep, envelope
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_tracking import TrackingEnvelope, TrackingUpdate
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.config import Settings
from mailgate.domain import Permission
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services import tracking as service
from mailgate.services.accounts import Principal
from mailgate.services.tracking import AccountTracking

router = APIRouter(prefix="/tracking", tags=["native: tracking"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.TRACKING_READ))]
Writer = Annotated[Principal, Depends(require(Permission.TRACKING_WRITE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 413, 429)
}
FIELDS = ("track_opens", "track_clicks", "transactional")


def _out(found: AccountTracking, settings: Settings) -> dict[str, Any]:
    return {
        "track_opens": found.track_opens,
        "track_clicks": found.track_clicks,
        "transactional": found.transactional,
        # where links point unless the provider has a tracking_domain
        "links_base_url": settings.effective_public_url,
    }


@router.get("", response_model=TrackingEnvelope, responses=ERRORS)
async def get_tracking(
    request: Request, ctx: CtxDep, session: SessionDep, principal: Reader
) -> Response:
    """The account's defaults."""
    found = await service.get_account_tracking(session=session, account_id=principal.account_id)
    return json_response(envelope(request, _out(found, ctx.settings)))


@router.patch("", response_model=TrackingEnvelope, responses=ERRORS)
async def update_tracking(
    body: TrackingUpdate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: Writer,
    idempotency: IdempotencyDep,
) -> Response:
    """Change some defaults; mail accepted before keeps what it was accepted with."""
    nulls = [
        name for name in FIELDS if name in body.model_fields_set and getattr(body, name) is None
    ]
    if nulls:
        raise Invalid([Issue(name, N_("Must be true or false."), "type") for name in nulls])

    async def produce() -> dict[str, Any]:
        found = await service.update_account_tracking(
            session=session,
            account_id=principal.account_id,
            track_opens=body.track_opens,
            track_clicks=body.track_clicks,
            transactional=body.transactional,
        )
        return envelope(request, _out(found, ctx.settings))

    return await idempotency.respond(principal, 200, produce)
