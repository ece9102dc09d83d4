"""``/api/v1/messages``: accept mail (one, a batch, or raw MIME), read it back, cancel it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from mailgate.api.deps import CtxDep, LanguageDep, SessionDep, require
from mailgate.api.direct import direct
from mailgate.api.message_templates import (
    STAND_IN,
    render_one,
    render_templates,
    template_request,
)
from mailgate.api.messages_common import parse_instant, prefixed
from mailgate.api.native import mapping_messages as mapping
from mailgate.api.native.envelope import IdempotencyDep, envelope, listing
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_messages import (
    MessageBatchCreate,
    MessageBatchEnvelope,
    MessageCreate,
    MessageCreatedEnvelope,
    MessageEnvelope,
    MessageListEnvelope,
    MessageOptions,
    RawMessageCreate,
)
from mailgate.api.problems import issues_from_pydantic
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.errors import Invalid
from mailgate.services import messages as service
from mailgate.services.accounts import Principal
from mailgate.services.messages import Accepted, Submission
from mailgate.services.providers import public_ids_of
from mailgate.validation import check_email

router = APIRouter(prefix="/messages", tags=["native: messages"], route_class=MailgateRoute)

Sender = Annotated[Principal, Depends(require(Permission.MESSAGES_SEND))]
Reader = Annotated[Principal, Depends(require(Permission.MESSAGES_READ))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 429)
}
RFC822: Final = "message/rfc822"
_BATCH_INDEX: Final = re.compile(r"^\d+\.")
RAW_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RawMessageCreate.model_json_schema()},
            RFC822: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _accept(
    ctx: CtxDep, principal: Principal, submissions: Sequence[Submission]
) -> tuple[list[Accepted], dict[int, str]]:
    accepted = await ctx.accepter.accept(principal.account_id, submissions)
    chosen = {a.message.provider_id for a in accepted} - {None}
    if not chosen:  # the common case needs no session at all
        return accepted, {}
    async with ctx.database.session() as session:
        providers = await public_ids_of(
            session=session, account_id=principal.account_id, ids=chosen
        )
    return accepted, providers


@router.post("", status_code=201, response_model=MessageCreatedEnvelope, responses=ERRORS)
@direct
async def send_message(
    body: MessageCreate,
    request: Request,
    ctx: CtxDep,
    principal: Sender,
    idempotency: IdempotencyDep,
) -> Response:
    """Accept one message. A 201 means it is stored and queued (or scheduled)."""

    async def produce() -> dict[str, Any]:
        wanted = template_request(body.template_id, body.template_data)
        template = await render_one(
            ctx, principal.account_id, wanted, lambda stand_in: mapping.draft(body, stand_in)
        )
        submission = mapping.submission(
            body, settings=ctx.settings, now=datetime.now(UTC), template=template
        )
        accepted, providers = await _accept(ctx, principal, [submission])
        return envelope(request, mapping.accepted_out(accepted[0], submission, providers))

    return await idempotency.respond(principal, 201, produce)


@router.post("/batch", status_code=201, response_model=MessageBatchEnvelope, responses=ERRORS)
@direct
async def send_batch(
    body: MessageBatchCreate,
    request: Request,
    ctx: CtxDep,
    principal: Sender,
    idempotency: IdempotencyDep,
) -> Response:
    """Accept up to 500 messages, all or none: one bad message and nothing is stored."""

    async def produce() -> dict[str, Any]:
        now = datetime.now(UTC)
        wanted = [template_request(m.template_id, m.template_data) for m in body.messages]
        refused: list[Invalid] = []  # every bad message is reported, not just the first
        try:
            templates = await render_templates(ctx, principal.account_id, wanted)
        except Invalid as exc:  # the rest is still checked, with stand-ins for the templates
            refused.append(exc.renamed(_batch_field))
            templates = [None if w is None else STAND_IN for w in wanted]
        submissions: list[Submission] = []
        for index, message in enumerate(body.messages):
            try:
                submissions.append(
                    mapping.submission(
                        message, settings=ctx.settings, now=now, template=templates[index]
                    )
                )
            except Invalid as exc:
                refused.append(prefixed(exc, f"messages.{index}."))
        if refused:
            raise type(refused[0])([issue for exc in refused for issue in exc.issues])
        try:
            accepted, providers = await _accept(ctx, principal, submissions)
        except Invalid as exc:
            raise exc.renamed(_batch_field) from exc
        items = [
            mapping.accepted_out(a, s, providers)
            for a, s in zip(accepted, submissions, strict=True)
        ]
        return envelope(request, items)

    return await idempotency.respond(principal, 201, produce)


def _batch_field(field: str) -> str:
    """The service names a message of a batch by index (``3.provider_id``), or, for a single
    submission, not at all."""
    if _BATCH_INDEX.match(field):
        return f"messages.{field}"
    return f"messages.0.{field}" if field else field


def _raw_options(
    tag: list[str] | None, provider_id: str | None, send_at: str | None
) -> MessageOptions:
    sent = {"tags": tag, "provider_id": provider_id, "send_at": send_at}
    try:
        return MessageOptions.model_validate({k: v for k, v in sent.items() if v is not None})
    except ValidationError as exc:
        rename = {"tags": "tag"}
        raise Invalid(issues_from_pydantic(exc.errors(), rename)) from exc


@router.post(
    "/raw",
    status_code=201,
    response_model=MessageCreatedEnvelope,
    responses=ERRORS,
    openapi_extra=RAW_BODY,
)
async def send_raw(
    request: Request,
    ctx: CtxDep,
    principal: Sender,
    idempotency: IdempotencyDep,
    tag: Annotated[list[str] | None, Query(description="message/rfc822 only.")] = None,
    provider_id: Annotated[str | None, Query(description="message/rfc822 only.")] = None,
    send_at: Annotated[str | None, Query(description="message/rfc822 only.")] = None,
) -> Response:
    """Accept a whole MIME message: JSON ``{"raw": "<base64>", ...}``, or the bytes themselves
    as ``Content-Type: message/rfc822`` (options then in the query string). Recipients come
    from To, Cc and Bcc; Bcc is removed; Message-ID and Date are added when missing."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    options: MessageOptions
    if content_type == RFC822:
        options = _raw_options(tag, provider_id, send_at)
        raw = body
    else:
        try:
            parsed = RawMessageCreate.model_validate_json(body or b"null")
        except ValidationError as exc:
            raise Invalid(issues_from_pydantic(exc.errors())) from exc
        options = parsed
        raw = mapping.decode_raw(parsed.raw)

    async def produce() -> dict[str, Any]:
        submission = mapping.raw_submission(
            raw, options, settings=ctx.settings, now=datetime.now(UTC)
        )
        accepted, providers = await _accept(ctx, principal, [submission])
        return envelope(request, mapping.accepted_out(accepted[0], submission, providers))

    return await idempotency.respond(principal, 201, produce)


@router.get("", response_model=MessageListEnvelope, responses=ERRORS)
async def list_messages(
    request: Request,
    session: SessionDep,
    principal: Reader,
    cursor: str | None = None,
    status: Annotated[list[str] | None, Query(description="Repeat it or separate by commas.")] = (
        None
    ),
    tag: str | None = None,
    recipient: str | None = None,
    since: Annotated[str | None, Query(description="ISO 8601; created at or after.")] = None,
    until: Annotated[str | None, Query(description="ISO 8601; created before.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Messages, newest first, with cursor pagination."""
    if recipient is not None:
        try:
            recipient = check_email(recipient)
        except ValueError as exc:
            raise Invalid.field("recipient", str(exc), "invalid_email") from exc
    page = await service.list_messages(
        session=session,
        account_id=principal.account_id,
        limit=limit,
        before_id=mapping.decode_cursor(cursor) if cursor else None,
        statuses=mapping.status_filter(status or ()),
        tag=tag,
        recipient=recipient,
        since=parse_instant(since, "since") if since else None,
        until=parse_instant(until, "until") if until else None,
    )
    providers = await public_ids_of(
        session=session,
        account_id=principal.account_id,
        ids=[m.provider_id for m in page.items] + [m.last_provider_id for m in page.items],
    )
    items = [mapping.message_out(m, providers) for m in page.items]
    last_id = page.items[-1].id if page.items else None
    return listing(
        request, items, has_more=page.has_more, last_id=last_id, cursor=mapping.encode_cursor
    )


async def _detail(
    request: Request, session: SessionDep, principal: Principal, message_id: str, language: str
) -> dict[str, Any]:
    detail = await service.get_message(
        session=session, account_id=principal.account_id, public_id=message_id
    )
    message = detail.message
    providers = await public_ids_of(
        session=session,
        account_id=principal.account_id,
        ids=[message.provider_id, message.last_provider_id]
        + [e.provider_id for e in detail.events],
    )
    return envelope(
        request,
        mapping.message_out(
            message,
            providers,
            recipients=detail.recipients,
            events=detail.events,
            language=language,
        ),
    )


@router.get("/{message_id}", response_model=MessageEnvelope, responses=ERRORS)
async def get_message(
    message_id: str,
    request: Request,
    session: SessionDep,
    principal: Reader,
    language: LanguageDep,
) -> Response:
    """A message: its status, each recipient's status and last SMTP reply, and its events."""
    return json_response(await _detail(request, session, principal, message_id, language))


@router.post("/{message_id}/cancel", response_model=MessageEnvelope, responses=ERRORS)
async def cancel_message(
    message_id: str,
    request: Request,
    session: SessionDep,
    principal: Sender,
    idempotency: IdempotencyDep,
    language: LanguageDep,
) -> Response:
    """Cancel scheduled or queued mail; 409 once it is being sent or has finished."""

    async def produce() -> dict[str, Any]:
        await service.cancel_message(
            session=session, account_id=principal.account_id, public_id=message_id
        )
        return await _detail(request, session, principal, message_id, language)

    return await idempotency.respond(principal, 200, produce)
