"""Native /api/v1/webhooks: create (secret shown once), read, list, change, delete; every
kind of bad input is a clear 400 and writes nothing; private targets; permissions; the
delivery log's paging. (Sending is tested in tests/webhooks.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Tenant

URL = "/api/v1/webhooks"
PUBLIC = "https://1.1.1.1/hooks/mailgate"  # a public address literal: no DNS needed


def create(tenant: Tenant, **body: Any) -> dict[str, Any]:
    answer = tenant.client.post(URL, json={"url": PUBLIC, "events": ["delivered"], **body})
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def listed(tenant: Tenant) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = tenant.client.get(URL, params={"limit": 100}).json()["data"]
    return items


def test_create_read_list_change_delete(tenant: Tenant) -> None:
    created = create(tenant, events=["delivered", "bounce", "delivered"], description="CRM")
    assert created["id"].startswith("whk_")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["delivered", "bounce"]
    assert created["enabled"] is True and created["payload_format"] == "native"
    assert created["description"] == "CRM" and created["disabled_reason"] is None
    secret = created.pop("secret")

    fetched = tenant.client.get(f"{URL}/{created['id']}").json()["data"]
    assert fetched == created and secret not in str(fetched)
    second = create(tenant)
    assert [w["id"] for w in listed(tenant)] == [created["id"], second["id"]]
    assert all("secret" not in w for w in listed(tenant))
    page = tenant.client.get(URL, params={"limit": 1}).json()
    assert page["pagination"]["has_more"] is True
    rest = tenant.client.get(URL, params={"cursor": page["pagination"]["next_cursor"]}).json()
    assert [w["id"] for w in rest["data"]] == [second["id"]]

    patched = tenant.client.patch(
        f"{URL}/{created['id']}",
        json={"events": ["open", "click"], "description": None, "enabled": False},
    )
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert data["events"] == ["open", "click"] and data["description"] == ""
    assert data["enabled"] is False and "secret" not in data
    url = "http://8.8.8.8:8080/other?x=1"
    assert (
        tenant.client.patch(f"{URL}/{created['id']}", json={"url": url}).json()["data"]["url"]
        == url
    )

    removed = tenant.client.delete(f"{URL}/{created['id']}")
    assert removed.json()["data"] == {"deleted": True, "id": created["id"]}
    assert_error(tenant.client.get(f"{URL}/{created['id']}"), 404, "not_found")
    assert_error(tenant.client.delete(f"{URL}/{created['id']}"), 404, "not_found")


def test_an_idempotent_replay_does_not_show_the_secret_again(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "hook-create-1"}
    body = {"url": PUBLIC, "events": ["processed"]}
    first = tenant.client.post(URL, json=body, headers=headers)
    again = tenant.client.post(URL, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["data"]["secret"].startswith("whsec_")
    assert again.json()["data"]["secret"] is None
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert len(listed(tenant)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": PUBLIC, "events": ["delivered"], "colour": "red"}, "colour"),
        ({"url": PUBLIC, "events": "delivered"}, "events"),
        ({"url": PUBLIC, "events": []}, "events"),
        ({"url": PUBLIC, "events": ["delivered", "exploded"]}, "events"),
        ({"url": PUBLIC, "events": ["delivered"], "enabled": "yes"}, "enabled"),
        ({"url": PUBLIC, "events": ["delivered"], "description": "a\r\nX-Evil: 1"}, "description"),
        ({"url": PUBLIC, "events": ["delivered"], "description": "d" * 256}, "description"),
        ({"url": 42, "events": ["delivered"]}, "url"),
        ({"events": ["delivered"]}, "url"),
        ({"url": "ftp://1.1.1.1/x", "events": ["delivered"]}, "url"),
        ({"url": "https://user:pw@1.1.1.1/x", "events": ["delivered"]}, "url"),
        ({"url": "https://1.1.1.1/a b", "events": ["delivered"]}, "url"),
        ({"url": "https:///nohost", "events": ["delivered"]}, "url"),
        ({"url": "https://1.1.1.1/" + "x" * 2100, "events": ["delivered"]}, "url"),
    ],
)
def test_bad_input_is_a_clear_400_and_writes_nothing(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    error = assert_error(tenant.client.post(URL, json=body), 400, "validation_error")
    assert field in str(error)
    assert listed(tenant) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_private_targets_are_refused(tenant: Tenant, url: str) -> None:
    error = assert_error(
        tenant.client.post(URL, json={"url": url, "events": ["delivered"]}), 400, "validation_error"
    )
    assert "non-public" in str(error)
    created = create(tenant)
    patched = tenant.client.patch(f"{URL}/{created['id']}", json={"url": url})
    assert_error(patched, 400, "validation_error")
    assert tenant.client.get(f"{URL}/{created['id']}").json()["data"]["url"] == PUBLIC


def test_bad_bodies_and_ids(tenant: Tenant) -> None:
    raw = tenant.client.post(
        URL,
        content=b'{"url": "\xff\xfe", "events": ["delivered"]}',
        headers={"content-type": "application/json"},
    )
    assert_error(raw, 400, "validation_error")
    assert_error(tenant.client.post(URL, content=b"[1, 2"), 400, "validation_error")
    created = create(tenant)
    assert_error(
        tenant.client.patch(f"{URL}/{created['id']}", json={"url": None}), 400, "validation_error"
    )
    assert_error(
        tenant.client.patch(f"{URL}/{created['id']}", json={"events": None}),
        400,
        "validation_error",
    )
    assert_error(tenant.client.get(f"{URL}/whk_nope"), 404, "not_found")
    assert_error(tenant.client.get(f"{URL}/whk_nope/deliveries"), 404, "not_found")
    assert_error(
        tenant.client.post(f"{URL}/{created['id']}/deliveries/whmsg_nope/replay"), 404, "not_found"
    )
    assert_error(
        tenant.client.get(f"{URL}/{created['id']}/deliveries", params={"cursor": "zz"}),
        400,
        "validation_error",
    )
    assert_error(
        tenant.client.get(f"{URL}/{created['id']}/deliveries", params={"status": "lost"}),
        400,
        "validation_error",
    )


def test_the_delivery_log_pages_newest_first(tenant: Tenant) -> None:
    created = create(tenant)
    queued = [tenant.client.post(f"{URL}/{created['id']}/test") for _ in range(3)]
    assert {q.status_code for q in queued} == {202}
    ids = [q.json()["data"]["id"] for q in queued]
    first = tenant.client.get(f"{URL}/{created['id']}/deliveries", params={"limit": 2}).json()
    assert [d["id"] for d in first["data"]] == ids[::-1][:2]
    assert first["data"][0]["status"] == "pending" and first["data"][0]["payload"]["test"] is True
    assert first["data"][0]["next_attempt_at"]
    rest = tenant.client.get(
        f"{URL}/{created['id']}/deliveries", params={"cursor": first["pagination"]["next_cursor"]}
    ).json()
    assert [d["id"] for d in rest["data"]] == [ids[0]]
    assert rest["pagination"] == {"has_more": False, "next_cursor": None}
    one = tenant.client.get(f"{URL}/{created['id']}/deliveries/{ids[1]}").json()["data"]
    assert one["event_type"] == "test" and one["attempts"] == 0
    off = tenant.client.patch(f"{URL}/{created['id']}", json={"enabled": False})
    assert off.status_code == 200
    given_up = tenant.client.get(f"{URL}/{created['id']}/deliveries").json()["data"]
    assert {d["status"] for d in given_up} == {"failed"}
    assert_error(tenant.client.post(f"{URL}/{created['id']}/test"), 409, "conflict")


def test_permissions(tenant: Tenant) -> None:
    reader = tenant.key_with("webhooks:read")
    with httpx.Client(
        base_url=tenant.server.base_url, headers={"Authorization": f"Bearer {reader}"}
    ) as client:
        assert client.get(URL).status_code == 200
        assert_error(
            client.post(URL, json={"url": PUBLIC, "events": ["delivered"]}), 403, "forbidden"
        )
    other = tenant.key_with("messages:send")
    with httpx.Client(
        base_url=tenant.server.base_url, headers={"Authorization": f"Bearer {other}"}
    ) as client:
        assert client.get(URL).status_code == 403
