"""Native /api/v1/tracking: the account's defaults, read and changed; bad bodies refused in
the native error shape; permissions. And whom the public pages believe about the client IP."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest

from conftest import Tenant
from mailgate.api.public.visitor import client_ip

URL = "/api/v1/tracking"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_read_and_change_the_defaults(tenant: Tenant) -> None:
    first = tenant.client.get(URL)
    assert first.status_code == 200
    data = first.json()["data"]
    assert (data["track_opens"], data["track_clicks"], data["transactional"]) == (
        False,
        False,
        False,
    )
    assert data["links_base_url"].startswith("http://")
    changed = tenant.client.patch(URL, json={"track_clicks": True})
    assert changed.status_code == 200
    assert changed.json()["data"]["track_clicks"] is True
    assert changed.json()["data"]["track_opens"] is False  # untouched
    assert tenant.client.patch(URL, json={}).json()["data"]["track_clicks"] is True
    assert tenant.client.get(URL).json()["data"]["track_clicks"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"track_opens": "yes"}, "track_opens"),
        ({"track_opens": 1}, "track_opens"),
        ({"transactional": None}, "transactional"),
        ({"track_everything": True}, "track_everything"),
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    error = assert_error(tenant.client.patch(URL, json=body), 400, "validation_error")
    assert error["param"] == field
    assert tenant.client.get(URL).json()["data"]["track_opens"] is False


def test_bad_json_and_per_message_fields_are_refused(tenant: Tenant) -> None:
    bad = tenant.client.patch(URL, content=b"{\xff}", headers={"Content-Type": "application/json"})
    assert_error(bad, 400, "validation_error")
    message = {
        "from": {"email": "a@example.com"},
        "to": [{"email": "b@example.com"}],
        "subject": "s",
        "text": "t",
        "track_opens": "true",
    }
    assert_error(tenant.client.post("/api/v1/messages", json=message), 400, "validation_error")


def test_permissions(tenant: Tenant) -> None:
    reader = {"Authorization": f"Bearer {tenant.key_with('tracking:read')}"}
    assert tenant.client.get(URL, headers=reader).status_code == 200
    assert_error(tenant.client.patch(URL, json={}, headers=reader), 403, "forbidden")
    nobody = {"Authorization": f"Bearer {tenant.key_with('messages:send')}"}
    assert_error(tenant.client.get(URL, headers=nobody), 403, "forbidden")
    assert_error(httpx.get(tenant.server.base_url + URL), 401, "unauthorized")


PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        ("198.51.100.7", ["203.0.113.9"], (), "198.51.100.7"),  # no proxy trusted
        ("198.51.100.7", ["203.0.113.9"], PROXIES, "198.51.100.7"),  # peer is no proxy
        ("10.1.2.3", ["203.0.113.9"], PROXIES, "203.0.113.9"),
        ("10.1.2.3", ["1.1.1.1, 203.0.113.9, 10.9.9.9"], PROXIES, "203.0.113.9"),  # spoof left
        ("10.1.2.3", ["1.1.1.1", "203.0.113.9"], PROXIES, "203.0.113.9"),  # two headers
        ("10.1.2.3", ["10.2.2.2"], PROXIES, "10.2.2.2"),  # proxies all the way
        ("10.1.2.3", [], PROXIES, "10.1.2.3"),
        ("10.1.2.3", ["garbage, 10.4.4.4"], PROXIES, "10.4.4.4"),
        ("fd00::1", ["[2001:db8::5]"], PROXIES, "2001:db8::5"),
        (None, ["203.0.113.9"], PROXIES, None),
    ],
)
def test_client_ip(
    peer: str | None, forwarded: list[str], proxies: Any, expected: str | None
) -> None:
    assert client_ip(peer, forwarded, proxies) == expected
