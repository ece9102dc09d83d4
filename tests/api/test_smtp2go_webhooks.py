"""SMTP2GO /v3/webhook/add|edit|remove|view in SMTP2GO's shapes (numeric ids, its event
names, the key in the body and no Content-Type); options Mailgate lacks; bad input."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from conftest import Tenant

PUBLIC = "https://1.1.1.1/smtp2go-hook"


def call(tenant: Tenant, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        return client.post(
            f"/v3/webhook/{path}", content=json.dumps({"api_key": tenant.key, **(body or {})})
        )


def data_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"request_id", "data"}
    uuid.UUID(body["request_id"])
    return body["data"]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    data: dict[str, Any] = data_of(response, status)
    assert data["error_code"].startswith("E_ApiResponseCodes.") and data["error"]
    return data


def test_add_view_edit_remove(tenant: Tenant) -> None:
    added = data_of(call(tenant, "add", {"url": PUBLIC, "events": ["delivered", "bounce"]}))
    assert isinstance(added["id"], int) and added["webhook_id"].startswith("whk_")
    assert added["secret"].startswith("whsec_")
    assert added["events"] == ["delivered", "bounce"] and added["output_format"] == "json"
    everything = data_of(call(tenant, "add", {"url": PUBLIC, "events": None, "usernames": []}))
    assert set(everything["events"]) == {
        "processed",
        "delivered",
        "bounce",
        "reject",
        "spam",
        "unsubscribe",
        "open",
        "click",
    }

    listed = data_of(call(tenant, "view"))
    assert [w["id"] for w in listed] == [added["id"], everything["id"]]
    assert all("secret" not in w for w in listed)
    [one] = data_of(call(tenant, "view", {"id": added["id"]}))
    assert one["url"] == PUBLIC

    edited = data_of(
        call(tenant, "edit", {"webhook_id": added["id"], "events": ["open"], "url": None})
    )
    assert edited["events"] == ["open"] and edited["url"] == PUBLIC
    by_public_id = data_of(call(tenant, "edit", {"id": added["webhook_id"], "enabled": False}))
    assert by_public_id["enabled"] is False

    assert data_of(call(tenant, "remove", {"id": added["id"]})) == {
        "id": added["id"],
        "webhook_id": added["webhook_id"],
    }
    error_of(call(tenant, "remove", {"id": added["id"]}), 404)
    error_of(call(tenant, "view", {"id": added["id"]}), 404)
    # Seen through the native API too: one domain, two surfaces.
    native = tenant.client.get(f"/api/v1/webhooks/{everything['webhook_id']}").json()["data"]
    assert native["payload_format"] == "smtp2go" and "processed" in native["events"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["delivered"]}, "url"),
        ({"url": PUBLIC, "events": ["deferred"]}, "events"),
        ({"url": PUBLIC, "events": ["resubscribe"]}, "events"),
        ({"url": PUBLIC, "sms_events": ["delivered"]}, "sms_events"),
        ({"url": PUBLIC, "usernames": ["someone"]}, "usernames"),
        ({"url": PUBLIC, "output_format": "form"}, "output_format"),
        ({"url": PUBLIC, "unknown": 1}, "unknown"),
        ({"url": "http://127.0.0.1/x"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": PUBLIC, "description": "a\nb"}, "description"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_added(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    error = error_of(call(tenant, "add", body), 400)
    assert field in json.dumps(error)
    assert data_of(call(tenant, "view")) == []


def test_edit_and_remove_need_an_id(tenant: Tenant) -> None:
    error_of(call(tenant, "edit", {"url": PUBLIC}), 400)
    error_of(call(tenant, "remove", {}), 400)
    error_of(call(tenant, "remove", {"id": 999999999}), 404)


def test_permissions(tenant: Tenant) -> None:
    key = tenant.key_with("webhooks:read")
    with httpx.Client(base_url=tenant.server.base_url) as client:
        body = json.dumps({"api_key": key, "url": PUBLIC})
        error_of(client.post("/v3/webhook/add", content=body), 403)
        assert (
            client.post("/v3/webhook/view", content=json.dumps({"api_key": key})).status_code == 200
        )
