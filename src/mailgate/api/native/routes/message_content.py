"""``/api/v1/messages/{id}/raw``: a message's MIME exactly as it was accepted and stored.

After the retention period (``MAILGATE_ARCHIVE_RETENTION_DAYS``) the body of finished mail is
purged: the download is then a 410 saying so, while the message itself is still listed.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep, require
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.services import archive as service
from mailgate.services.accounts import Principal

router = APIRouter(prefix="/messages", tags=["native: messages"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.MESSAGES_READ))]
RFC822: Final = "message/rfc822"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {RFC822: {"schema": {"type": "string", "format": "binary"}}}},
    **{code: {"model": ErrorEnvelope} for code in (401, 403, 404, 410, 429)},
}


@router.get("/{message_id}/raw", response_class=Response, responses=RESPONSES)
async def download_raw(
    message_id: str, request: Request, session: SessionDep, principal: Reader
) -> Response:
    """The MIME as stored when the message was accepted, as ``message/rfc822``."""
    found = await service.raw_message(
        session=session, account_id=principal.account_id, public_id=message_id
    )
    filename = f"{found.message.public_id}.eml"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(found.raw, media_type=RFC822, headers=headers)
