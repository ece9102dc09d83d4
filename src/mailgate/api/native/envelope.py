"""The native success envelope, and Idempotency-Key handling for every native write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.responses import Response

from mailgate.api.deps import context_of
from mailgate.api.native.errors import request_id
from mailgate.api.responses import json_bytes, json_response
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.security.secrets_box import SecretBox
from mailgate.services.accounts import Principal
from mailgate.services.idempotency import StoredResponse, fingerprint, release, reserve, store
from mailgate.store.db import Database

__all__ = ["Idempotency", "envelope", "listing"]


def envelope(request: Request, data: Any, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "meta": {"request_id": request_id(request)}, "data": data, **extra}


def listing(
    request: Request,
    items: list[Any],
    *,
    has_more: bool,
    last_id: int | None,
    cursor: Callable[[int], str],
) -> Response:
    """A page of a native list: the items, and ``pagination`` whose next cursor (when there
    is more) names the page's last row."""
    next_cursor = cursor(last_id) if has_more and last_id is not None else None
    pagination = {"has_more": has_more, "next_cursor": next_cursor}
    return json_response(envelope(request, items, pagination=pagination))


class Idempotency:
    """Replays the first answer to a write made with the same ``Idempotency-Key``.

    Each write route ends with ``return await idempotency.respond(status, produce)``.
    ``keep`` turns the answer into what is stored for replays: a secret shown once (a
    generated password) is answered but never stored, so a replay carries ``null`` there.
    """

    def __init__(
        self, request: Request, key: str | None, database: Database, box: SecretBox
    ) -> None:
        self.request = request
        self.key = key
        self.database = database
        self.box = box

    async def respond(
        self,
        principal: Principal,
        status_code: int,
        produce: Callable[[], Awaitable[dict[str, Any]]],
        keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Response:
        if not self.key:
            return json_response(await produce(), status_code)
        endpoint = f"{self.request.method} {self.request.url.path}"
        raw = await self.request.body()
        request_hash = fingerprint(self.request.method, endpoint, raw, self.box)
        # Sessions of its own, opened only when a key is given, and never while ``produce``
        # runs (on SQLite the route's session needs the one connection then).
        async with self.database.session() as session:
            held = await reserve(
                session=session,
                account_id=principal.account_id,
                endpoint=endpoint,
                key=self.key,
                request_hash=request_hash,
            )
        if isinstance(held, StoredResponse):
            response = Response(held.body, held.status_code, media_type="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            body = await produce()
        except Exception:  # refused before anything was committed: the key may be used again
            async with self.database.session() as session:
                await release(session=session, reservation=held)
            raise
        response = json_response(body, status_code)
        stored_body = bytes(response.body) if keep is None else json_bytes(keep(body))
        async with self.database.session() as session:
            await store(
                session=session,
                reservation=held,
                response=StoredResponse(status_code, stored_body),
            )
        return response


async def get_idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(description="Client-chosen key (max 255) to retry a write safely for 24 h."),
    ] = None,
) -> Idempotency:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise Invalid.field("Idempotency-Key", N_("Must be 1 to 255 characters long."))
    ctx = context_of(request)
    return Idempotency(request, idempotency_key, ctx.database, ctx.box)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
