"""SMTP2GO /v3/stats/...: the shapes SMTP2GO answers (request_id + data, percentages as
two-decimal strings), the key in the body or a header, and 400s for what Mailgate cannot
answer or does not understand."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import Tenant
from mailgate.store.models import Event

REPORTS = ("email_bounces", "email_spam", "email_unsubs", "email_cycle", "email_summary")


def send(tenant: Tenant, path: str, body: Any = None, *, raw: bytes | None = None) -> Any:
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        if raw is not None:
            return client.post(path, content=raw, headers={"X-Smtp2go-Api-Key": tenant.key})
        payload = {"api_key": tenant.key, **(body or {})}
        return client.post(path, content=json.dumps(payload))


def data_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"request_id", "data"}
    uuid.UUID(body["request_id"])
    return body["data"]


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    data: dict[str, Any] = data_of(response, status)
    assert data["error_code"] == f"E_ApiResponseCodes.{code}"
    assert data["error"]
    return data


def test_an_account_with_no_mail(tenant: Tenant) -> None:
    assert data_of(send(tenant, "/v3/stats/email_bounces")) == {
        "emails": 0,
        "rejects": 0,
        "softbounces": 0,
        "hardbounces": 0,
        "bounce_percent": "0.00",
    }
    assert data_of(send(tenant, "/v3/stats/email_spam")) == {
        "emails": 0,
        "rejects": 0,
        "spams": 0,
        "spam_percent": "0.00",
    }
    assert data_of(send(tenant, "/v3/stats/email_unsubs")) == {
        "emails": 0,
        "rejects": 0,
        "unsubscribes": 0,
        "unsubscribe_percent": "0.00",
    }
    cycle = data_of(send(tenant, "/v3/stats/email_cycle"))
    assert cycle["cycle_used"] == 0 and cycle["cycle_remaining"] == cycle["cycle_max"]
    start = datetime.fromisoformat(cycle["cycle_start"])
    end = datetime.fromisoformat(cycle["cycle_end"])
    assert start.day == 1 and (end + timedelta(days=1)).day == 1 and start <= datetime.now(UTC)
    summary = data_of(send(tenant, "/v3/stats/email_summary"))
    assert set(summary) == {
        "cycle_start",
        "cycle_end",
        "cycle_used",
        "cycle_remaining",
        "cycle_max",
        "email_count",
        "rejects",
        "bounce_rejects",
        "softbounces",
        "hardbounces",
        "bounce_percent",
        "spam_emails",
        "spam_rejects",
        "spam_percent",
        "unsubscribes",
        "unsubscribe_percent",
        "opens",
        "clicks",
    }
    assert data_of(send(tenant, "/v3/stats/email_history")) == {
        "count": 0,
        "history": [],
        "bounce_percent_total": 0.0,
        "open_percent_total": 0.0,
        "reject_percent_total": 0.0,
        "spam_percent_total": 0.0,
        "unsubscribe_percent_total": 0.0,
    }


def test_only_the_last_30_days_count(tenant: Tenant) -> None:
    now = datetime.now(UTC)

    async def work(session: Any) -> None:
        for kind, bounce_class, age in (
            ("delivered", None, timedelta(days=1)),
            ("delivered", None, timedelta(days=29)),
            ("bounce", "hard", timedelta(hours=2)),
            ("delivered", None, timedelta(days=31, hours=2)),  # too old
            ("bounce", "soft", timedelta(days=40)),  # too old
        ):
            session.add(
                Event(
                    account_id=tenant.account_id,
                    type=kind,
                    bounce_class=bounce_class,
                    created_at=now - age,
                )
            )
        await session.commit()

    tenant.server.run(work)
    assert data_of(send(tenant, "/v3/stats/email_bounces")) == {
        "emails": 3,
        "rejects": 0,
        "softbounces": 0,
        "hardbounces": 1,
        "bounce_percent": "33.33",
    }
    # the key as a header, and the body the Python client sends: every key, unused ones null
    raw = json.dumps({"username": None}).encode()
    assert data_of(send(tenant, "/v3/stats/email_bounces", raw=raw))["emails"] == 3


@pytest.mark.parametrize("endpoint", REPORTS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "relay-user"}, "username"),
        ({"username": 7}, "username"),
        ({"days": 7}, "days"),
    ],
)
def test_report_bodies_mailgate_cannot_answer_are_400(
    tenant: Tenant, endpoint: str, body: dict[str, Any], field: str
) -> None:
    data = error_of(send(tenant, f"/v3/stats/{endpoint}", body), 400, "NON_VALIDATING_IN_PAYLOAD")
    assert data["field_validation_errors"]["fieldname"] == field, data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "last week"}, "start_date"),
        ({"end_date": "2026-02-30"}, "end_date"),
        ({"start_date": "2026-03-02", "end_date": "2026-03-01"}, "end_date"),
        ({"group_by": "username"}, "group_by"),
        ({"group_by": "subaccount"}, "group_by"),
        ({"group_by": ["domain"]}, "group_by"),
        ({"subaccounts": ["sa_1"]}, "subaccounts"),
        ({"start_date": 20260301}, "start_date"),
        ({"limit": 10}, "limit"),
    ],
)
def test_bad_history_bodies_are_400(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    data = error_of(send(tenant, "/v3/stats/email_history", body), 400, "NON_VALIDATING_IN_PAYLOAD")
    assert data["field_validation_errors"]["fieldname"] == field, data


def test_unparsable_bodies_are_400(tenant: Tenant) -> None:
    for raw in (b"{not json", b"[1, 2]", b'{"start_date": "\xff\xfe"}'):
        response = send(tenant, "/v3/stats/email_history", raw=raw)
        assert response.status_code == 400, response.text
        assert response.json()["data"]["error"]


def test_permissions(tenant: Tenant) -> None:
    sender_only = tenant.key_with("messages:send")
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        for endpoint in (*REPORTS, "email_history"):
            path = f"/v3/stats/{endpoint}"
            denied = client.post(path, content=json.dumps({"api_key": sender_only}))
            assert denied.status_code == 403, denied.text
            assert client.post(path, content=b"{}").status_code == 401
