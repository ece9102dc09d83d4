"""SMTP2GO ``/v3/email/scheduled``, ``/v3/email/scheduled/remove`` and the deprecated
``/v3/email/search``: scheduling with ``schedule``, listing, cancelling, searching."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import Tenant

SEND = "/v3/email/send"
SCHEDULED = "/v3/email/scheduled"
REMOVE = "/v3/email/scheduled/remove"
SEARCH = "/v3/email/search"


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


def when(**delta: float) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def send(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender": "Shop <shop@example.com>",
        "to": ["alice@example.com"],
        "subject": "Your order",
        "text_body": "Thanks",
    }
    body.update(overrides)
    data: dict[str, Any] = data_of(tenant.client.post(SEND, content=json.dumps(body)))
    return data


def native_status(tenant: Tenant, email_id: str) -> str:
    status: str = tenant.client.get(f"/api/v1/messages/{email_id}").json()["data"]["status"]
    return status


# --- scheduling -----------------------------------------------------------------------------------


def test_schedule_in_smtp2gos_format_and_in_iso_8601(tenant: Tenant) -> None:
    at = when(days=1)
    smtp2go_style = send(
        tenant, schedule=(at + timedelta(hours=12)).strftime("%Y-%m-%d %H:%M:%S +1200")
    )
    iso_style = send(tenant, schedule=at.isoformat().replace("+00:00", "Z"))
    no_zone = send(tenant, schedule=at.strftime("%Y-%m-%d %H:%M:%S"))  # UTC
    past = send(tenant, schedule="2020-01-01 00:00:00")

    for data in (smtp2go_style, iso_style, no_zone):
        assert data["schedule_id"] == data["email_id"]
        assert native_status(tenant, data["email_id"]) == "scheduled"
    assert "schedule_id" not in past
    assert native_status(tenant, past["email_id"]) == "queued"

    listed = data_of(tenant.client.post(SCHEDULED, json={}))
    expected = at.isoformat().replace("+00:00", "Z")
    assert [(e["schedule_id"], e["schedule"]) for e in listed] == [
        (no_zone["email_id"], expected),
        (iso_style["email_id"], expected),
        (smtp2go_style["email_id"], expected),
    ]
    assert listed[0] == {
        "schedule_id": no_zone["email_id"],
        "email_id": no_zone["email_id"],
        "schedule": expected,
        "sender": "shop@example.com",
        "subject": "Your order",
        "recipients": "alice@example.com",
        "created_at": listed[0]["created_at"],
    }


def test_scheduled_search_filters_and_pages(tenant: Tenant) -> None:
    at = when(hours=3).isoformat()
    first = send(tenant, schedule=at, subject="Invoice 1", to=["bob@example.com"])["email_id"]
    second = send(tenant, schedule=at, subject="Invoice 2", cc=["carol@example.com"])["email_id"]
    third = send(tenant, schedule=at, subject="Welcome", sender="news@example.org")["email_id"]
    send(tenant)  # not scheduled

    def found(**query: Any) -> list[str]:
        return [e["schedule_id"] for e in data_of(tenant.client.post(SCHEDULED, json=query))]

    assert found() == [third, second, first]
    assert found(schedule_id=second) == [second]
    assert found(schedule_id="msg_nope") == []
    assert found(search_subject="invoice") == [second, first]
    assert found(search_sender="example.org") == [third]
    assert found(search_recipient="bob@example.com") == [first]
    assert found(limit=2) == [third, second]
    assert found(limit=2, page=2) == [first]
    assert found(limit=2, page=3) == []
    assert data_of(tenant.client.post(SCHEDULED))[0]["recipients"] == "alice@example.com"
    assert (
        "carol@example.com"
        in data_of(tenant.client.post(SCHEDULED, json={"limit": 2}))[1]["recipients"]
    )


def test_remove_a_scheduled_email(tenant: Tenant) -> None:
    scheduled = send(tenant, schedule=when(hours=2).isoformat())
    by_email_id = send(tenant, schedule=when(hours=2).isoformat())

    removed = data_of(tenant.client.post(REMOVE, json={"schedule_id": scheduled["schedule_id"]}))
    also = data_of(tenant.client.post(REMOVE, json={"email_id": by_email_id["email_id"]}))

    assert removed == {
        "succeeded": 1,
        "schedule_id": scheduled["schedule_id"],
        "email_id": scheduled["email_id"],
    }
    assert also["succeeded"] == 1
    assert data_of(tenant.client.post(SCHEDULED, json={})) == []
    assert native_status(tenant, scheduled["email_id"]) == "cancelled"
    again = tenant.client.post(REMOVE, json={"schedule_id": scheduled["schedule_id"]})
    assert "cancelled" in error_of(again, 402, "API_EXCEPTION")["error"]


def test_remove_refuses_mail_that_is_not_scheduled(tenant: Tenant) -> None:
    queued = send(tenant)

    response = tenant.client.post(REMOVE, json={"schedule_id": queued["email_id"]})

    error_of(response, 402, "API_EXCEPTION")
    assert native_status(tenant, queued["email_id"]) == "queued"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "NON_VALIDATING_IN_PAYLOAD"),
        ({"schedule_id": None}, 400, "NON_VALIDATING_IN_PAYLOAD"),
        ({"schedule_id": 5}, 400, "NON_VALIDATING_IN_PAYLOAD"),
        ({"schedule_id": "msg_000000000000000000000000"}, 404, "NOT_FOUND"),
    ],
)
def test_remove_bad_requests(tenant: Tenant, body: dict[str, Any], status: int, code: str) -> None:
    error_of(tenant.client.post(REMOVE, json=body), status, code)


def test_scheduled_endpoints_need_their_permissions(tenant: Tenant) -> None:
    scheduled = send(tenant, schedule=when(hours=1).isoformat())
    sender = {"X-Smtp2go-Api-Key": tenant.key_with("messages:send")}
    reader = {"X-Smtp2go-Api-Key": tenant.key_with("messages:read")}

    error_of(
        tenant.client.post(SCHEDULED, json={}, headers=sender), 403, "ENDPOINT_PERMISSION_DENIED"
    )
    error_of(tenant.client.post(SEARCH, json={}, headers=sender), 403, "ENDPOINT_PERMISSION_DENIED")
    error_of(
        tenant.client.post(REMOVE, json={"schedule_id": scheduled["schedule_id"]}, headers=reader),
        403,
        "ENDPOINT_PERMISSION_DENIED",
    )
    assert len(data_of(tenant.client.post(SCHEDULED, json={}, headers=reader))) == 1


# --- the deprecated search ------------------------------------------------------------------------


def test_search_sent_emails(tenant: Tenant) -> None:
    first = send(tenant, subject="Receipt A", to=["a@example.com", "b@example.com"])["email_id"]
    second = send(tenant, subject="Receipt B", sender="billing@example.net")["email_id"]
    third = send(tenant, subject="Hello", schedule=when(days=1).isoformat())["email_id"]

    def found(**query: Any) -> list[str]:
        data = data_of(tenant.client.post(SEARCH, json=query))
        assert data["count"] == len(data["emails"])
        return [e["email_id"] for e in data["emails"]]

    everything = data_of(tenant.client.post(SEARCH, json={}))
    assert [e["email_id"] for e in everything["emails"]] == [third, second, first]
    assert everything["continue_token"] is None
    oldest = everything["emails"][2]
    assert oldest == {
        "email_id": first,
        "email_ts": oldest["email_ts"],
        "sender": "shop@example.com",
        "subject": "Receipt A",
        "recipients": ["a@example.com", "b@example.com"],
        "status": "processed",
        "schedule": None,
        "size": oldest["size"],
    }
    assert everything["emails"][0]["status"] == "scheduled"
    assert found(search_subject="receipt") == [second, first]
    assert found(search_sender="billing@") == [second]
    assert found(search_recipient="b@example.com") == [first]
    assert found(search_email_id=second) == [second]
    assert found(search_email_id="msg_unknown") == []
    tomorrow = when(days=1).strftime("%Y-%m-%d")
    assert found(start_date=tomorrow) == []
    assert found(start_date="2020-01-01", end_date=tomorrow) == [third, second, first]
    assert found(end_date="2020-01-01 00:00:00") == []


def test_search_pages_with_a_continue_token(tenant: Tenant) -> None:
    sent = [send(tenant, subject=f"n{i}")["email_id"] for i in range(3)]

    page = data_of(tenant.client.post(SEARCH, json={"limit": 2}))
    rest = data_of(
        tenant.client.post(SEARCH, json={"limit": 2, "continue_token": page["continue_token"]})
    )

    assert [e["email_id"] for e in page["emails"]] == sent[:0:-1]
    assert [e["email_id"] for e in rest["emails"]] == sent[:1]
    assert rest["continue_token"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "someday"}, "start_date"),
        ({"continue_token": "garbage"}, "continue_token"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"filter": "x"}, "filter"),
    ],
)
def test_bad_searches_are_400(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    data = error_of(tenant.client.post(SEARCH, json=body), 400, "NON_VALIDATING_IN_PAYLOAD")

    assert data["field_validation_errors"]["fieldname"] == field
