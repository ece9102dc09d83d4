"""Native GET /api/v1/stats: hourly and daily buckets in UTC over a range, the envelope, and
every way a request can be wrong (dates, choices, unknown parameters, ids, permissions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from conftest import Tenant, new_tenant
from mailgate.store.models import Event

URL = "/api/v1/stats"


def insert_events(tenant: Tenant, *events: tuple[str, str, str | None]) -> None:
    """(type, ISO instant, bounce class) rows for the tenant, as the delivery records them."""

    async def work(session: Any) -> None:
        for kind, at, bounce_class in events:
            session.add(
                Event(
                    account_id=tenant.account_id,
                    type=kind,
                    bounce_class=bounce_class,
                    created_at=datetime.fromisoformat(at),
                )
            )
        await session.commit()

    tenant.server.run(work)


def data_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["meta"]["request_id"]
    data: dict[str, Any] = body["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["meta"]["request_id"]
    error: dict[str, Any] = body["error"]
    assert error["code"] == code and error["message"]
    return error


def busy(series: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {
        b["start"]: {k: v for k, v in b["counts"].items() if v}
        for b in series
        if any(b["counts"].values())
    }


def test_hourly_and_daily_buckets(tenant: Tenant) -> None:
    insert_events(
        tenant,
        ("processed", "2026-03-01T10:15:00+00:00", None),
        ("delivered", "2026-03-01T10:59:59.999999+00:00", None),
        ("bounce", "2026-03-01T12:00:00+00:00", "soft"),
        ("open", "2026-03-01T23:59:59+00:00", None),
        ("click", "2026-03-02T00:00:00+00:00", None),
        ("spam", "2026-03-03T00:00:00+00:00", None),  # past the end
        ("delivered", "2026-03-01T09:59:59+00:00", None),  # before the start's hour
    )

    hourly = data_of(
        tenant.client.get(
            URL,
            params={
                "start": "2026-03-01T10:30:00Z",
                "end": "2026-03-02T00:30:00Z",
                "interval": "hour",
            },
        )
    )

    # widened to whole hours: 10:00 to 01:00, fifteen buckets, empty ones included
    assert (hourly["start"], hourly["end"]) == ("2026-03-01T10:00:00Z", "2026-03-02T01:00:00Z")
    [series] = [g["series"] for g in hourly["groups"]]
    assert len(series) == 15
    assert busy(series) == {
        "2026-03-01T10:00:00Z": {"processed": 1, "delivered": 1},
        "2026-03-01T12:00:00Z": {"bounce": 1, "soft_bounce": 1},
        "2026-03-01T23:00:00Z": {"open": 1},
        "2026-03-02T00:00:00Z": {"click": 1},
    }
    assert hourly["totals"]["bounce"] == 1 and hourly["totals"]["hard_bounce"] == 0

    daily = data_of(
        tenant.client.get(
            URL, params={"start": "2026-03-01T10:30:00+02:00", "end": "2026-03-03T00:00:00Z"}
        )
    )
    assert daily["interval"] == "day"
    assert (daily["start"], daily["end"]) == ("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z")
    assert busy(daily["groups"][0]["series"]) == {
        "2026-03-01T00:00:00Z": {
            "processed": 1,
            "delivered": 2,
            "bounce": 1,
            "soft_bounce": 1,
            "open": 1,
        },
        "2026-03-02T00:00:00Z": {"click": 1},
    }


def test_defaults_and_an_empty_account(tenant: Tenant) -> None:
    data = data_of(tenant.client.get(URL))

    assert data["interval"] == "day" and data["group_by"] is None
    assert set(data["totals"]) == {
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "hard_bounce",
        "soft_bounce",
        "reject",
        "failed",
        "cancelled",
        "spam",
        "unsubscribe",
        "open",
        "click",
    }
    assert not any(data["totals"].values())
    [group] = data["groups"]
    assert len(group["series"]) in (7, 8)  # a week back from now, widened to whole days
    assert data_of(tenant.client.get(URL, params={"group_by": "tag"}))["groups"] == []


def test_stats_are_private_to_their_account(tenant: Tenant, live_server: Any) -> None:
    insert_events(tenant, ("processed", "2026-04-01T08:00:00+00:00", None))
    params = {"start": "2026-04-01T00:00:00Z", "end": "2026-04-02T00:00:00Z"}
    assert data_of(tenant.client.get(URL, params=params))["totals"]["processed"] == 1

    with new_tenant(live_server) as other:
        assert data_of(other.client.get(URL, params=params))["totals"]["processed"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        ({"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-12-31T00:00:00Z", "interval": "hour"},
            "end",
        ),
        ({"interval": "week"}, "interval"),
        ({"group_by": "sender"}, "group_by"),
        ({"tag": "x" * 129}, "tag"),
        ({"tag": "a\r\nb"}, "tag"),
        ({"tag": ""}, "tag"),
        ({"since": "2026-01-01"}, "since"),
        ({"limit": "5"}, "limit"),
    ],
)
def test_bad_parameters_are_400(tenant: Tenant, params: dict[str, str], field: str) -> None:
    error = assert_error(tenant.client.get(URL, params=params), 400, "validation_error")

    assert error["param"] == field, error


def test_unknown_provider_is_404(tenant: Tenant) -> None:
    for ref in ("dprov_000000000000000000000000", "999999", "nope"):
        assert_error(tenant.client.get(URL, params={"provider": ref}), 404, "not_found")


def test_permissions(tenant: Tenant) -> None:
    reader = {"Authorization": f"Bearer {tenant.key_with('messages:read')}"}
    sender = {"Authorization": f"Bearer {tenant.key_with('messages:send')}"}

    assert tenant.client.get(URL, headers=reader).status_code == 200
    error = assert_error(tenant.client.get(URL, headers=sender), 403, "forbidden")
    assert "messages:read" in error["message"]
    with httpx.Client(base_url=tenant.server.base_url) as anonymous:
        assert_error(anonymous.get(URL), 401, "unauthorized")
