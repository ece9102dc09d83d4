"""``/api/v1/stats``: event counts over time, by hour or day, per provider or per tag."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from mailgate.api.deps import SessionDep, require
from mailgate.api.messages_common import parse_instant
from mailgate.api.native import mapping_stats as mapping
from mailgate.api.native.envelope import envelope
from mailgate.api.native.schemas import ErrorEnvelope
from mailgate.api.native.schemas_stats import StatsEnvelope
from mailgate.api.responses import json_response
from mailgate.api.routing import MailgateRoute
from mailgate.domain import Permission
from mailgate.services import stats as service
from mailgate.services.accounts import Principal
from mailgate.services.providers import get_provider, public_ids_of

router = APIRouter(prefix="/stats", tags=["native: stats"], route_class=MailgateRoute)

Reader = Annotated[Principal, Depends(require(Permission.MESSAGES_READ))]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 429)
}


@router.get("", response_model=StatsEnvelope, responses=ERRORS)
async def get_stats(
    request: Request,
    session: SessionDep,
    principal: Reader,
    start: Annotated[
        str | None, Query(description="ISO 8601; default: a week (by hour: a day) before end.")
    ] = None,
    end: Annotated[str | None, Query(description="ISO 8601; default: now.")] = None,
    interval: Annotated[str, Query(description="hour or day (UTC).")] = "day",
    group_by: Annotated[str | None, Query(description="provider or tag.")] = None,
    provider: Annotated[
        list[str] | None, Query(description="Provider ids; repeat it or separate by commas.")
    ] = None,
    tag: Annotated[str | None, Query(description="Only mail with this tag.")] = None,
) -> Response:
    """Counts per event type in every bucket of ``[start, end)`` (widened to whole buckets),
    at most 2000 buckets."""
    mapping.check_parameters(request.query_params.keys())
    every = mapping.choice(service.Interval, interval, "interval")
    until = parse_instant(end, "end") if end else datetime.now(UTC)
    since = parse_instant(start, "start") if start else mapping.default_start(until, every)
    provider_ids: set[int] = set()
    for value in provider or ():
        for ref in filter(None, (part.strip() for part in value.split(","))):
            row = await get_provider(session=session, account_id=principal.account_id, ref=ref)
            provider_ids.add(row.id)
    report = await service.event_report(
        session=session,
        query=service.StatsQuery(
            account_id=principal.account_id,
            start=since,
            end=until,
            interval=every,
            group_by=mapping.choice(service.Dimension, group_by, "group_by") if group_by else None,
            provider_ids=frozenset(provider_ids),
            tag=tag,
        ),
    )
    keys = [g.key for g in report.groups if isinstance(g.key, int)]
    providers = await public_ids_of(session=session, account_id=principal.account_id, ids=keys)
    return json_response(envelope(request, mapping.report_out(report, providers)))
