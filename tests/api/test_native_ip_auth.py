"""Native /api/v1/ip-auth: list, add, change, remove; bad networks; one account per address;
permissions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Tenant, new_tenant
from mailgate.services import ip_auth as service

URL = "/api/v1/ip-auth"


def add(tenant: Tenant, network: str, **body: Any) -> dict[str, Any]:
    response = tenant.client.post(URL, json={"network": network, **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def owner(tenant: Tenant, ip: str) -> int | None:
    async def work(session: Any) -> int | None:
        return await service.account_for_ip(session=session, ip=ip)

    return tenant.server.run(work)  # type: ignore[return-value]


def test_add_get_patch_list_remove(tenant: Tenant) -> None:
    created = add(tenant, "10.20.0.0/16", description="Office")
    assert set(created) == {"id", "network", "description", "created_at"}
    assert created["id"].startswith("ipnet_")
    assert created["network"] == "10.20.0.0/16" and created["description"] == "Office"
    single = add(tenant, "10.30.1.2")
    assert single["network"] == "10.30.1.2/32" and single["description"] == ""
    assert owner(tenant, "10.20.5.5") == tenant.account_id

    fetched = tenant.client.get(f"{URL}/{created['id']}").json()["data"]
    assert fetched == created
    patched = tenant.client.patch(f"{URL}/{created['id']}", json={"description": "HQ"})
    assert patched.status_code == 200 and patched.json()["data"]["description"] == "HQ"
    cleared = tenant.client.patch(f"{URL}/{created['id']}", json={"description": None})
    assert cleared.json()["data"]["description"] == ""
    unchanged = tenant.client.patch(f"{URL}/{created['id']}", json={})
    assert unchanged.json()["data"]["network"] == "10.20.0.0/16"

    listed = tenant.client.get(URL).json()
    assert [item["id"] for item in listed["data"]] == [created["id"], single["id"]]
    assert listed["pagination"] == {"has_more": False, "next_cursor": None}
    page = tenant.client.get(URL, params={"limit": 1}).json()
    assert page["pagination"]["has_more"] is True
    rest = tenant.client.get(URL, params={"cursor": page["pagination"]["next_cursor"]}).json()
    assert [item["id"] for item in rest["data"]] == [single["id"]]

    removed = tenant.client.delete(f"{URL}/{created['id']}")
    assert removed.status_code == 200
    assert removed.json()["data"] == {"deleted": True, "id": created["id"]}
    assert owner(tenant, "10.20.5.5") is None
    assert_error(tenant.client.get(f"{URL}/{created['id']}"), 404, "not_found")
    assert_error(tenant.client.delete(f"{URL}/{created['id']}"), 404, "not_found")


def test_an_address_relays_for_one_account_only(tenant: Tenant, live_server: Any) -> None:
    add(tenant, "172.16.0.0/16")

    with new_tenant(live_server) as other:
        for overlapping in ("172.16.0.0/16", "172.16.9.0/24", "172.16.1.1", "172.0.0.0/8"):
            error = assert_error(
                other.client.post(URL, json={"network": overlapping}), 409, "conflict"
            )
            assert "another account" in error["message"]
        assert other.client.get(URL).json()["data"] == []
        add(other, "172.17.0.0/16")
        assert owner(tenant, "172.17.0.1") == other.account_id
    assert owner(tenant, "172.16.0.1") == tenant.account_id
    repeated = assert_error(
        tenant.client.post(URL, json={"network": "172.16.0.0/16"}), 409, "conflict"
    )
    assert "already listed" in repeated["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "network"),
        ({"network": None}, "network"),
        ({"network": 167772160}, "network"),
        ({"network": "not-an-ip"}, "network"),
        ({"network": "10.0.0.1/24"}, "network"),
        ({"network": "10.0.0.0/33"}, "network"),
        ({"network": "0.0.0.0/0"}, "network"),
        ({"network": "::/0"}, "network"),
        ({"network": "10.9.0.0/16\r\nX: y"}, "network"),
        ({"network": "1" * 65}, "network"),
        ({"network": "10.9.0.0/16", "description": "x" * 256}, "description"),
        ({"network": "10.9.0.0/16", "description": "a\nb"}, "description"),
        ({"network": "10.9.0.0/16", "account_id": 1}, "account_id"),
    ],
)
def test_bad_bodies_are_400(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    error = assert_error(tenant.client.post(URL, json=body), 400, "validation_error")

    assert field in {e["field"] for e in error["errors"]}, error
    assert tenant.client.get(URL).json()["data"] == []


def test_unknown_ids_are_404(tenant: Tenant) -> None:
    for nid in ("ipnet_000000000000000000000000", "1", "10.0.0.1"):
        assert_error(tenant.client.get(f"{URL}/{nid}"), 404, "not_found")
        assert_error(tenant.client.patch(f"{URL}/{nid}", json={}), 404, "not_found")
        assert_error(tenant.client.delete(f"{URL}/{nid}"), 404, "not_found")


def test_networks_are_private_to_their_account(tenant: Tenant, live_server: Any) -> None:
    nid = add(tenant, "10.40.0.0/16")["id"]

    with new_tenant(live_server) as other:
        assert_error(other.client.get(f"{URL}/{nid}"), 404, "not_found")
        assert_error(other.client.delete(f"{URL}/{nid}"), 404, "not_found")
    assert tenant.client.get(f"{URL}/{nid}").status_code == 200


def test_permissions(tenant: Tenant) -> None:
    nid = add(tenant, "10.50.0.0/16")["id"]
    reader = {"Authorization": f"Bearer {tenant.key_with('ip_auth:read')}"}
    smtp_users = {
        "Authorization": f"Bearer {tenant.key_with('smtp_users:read', 'smtp_users:write')}"
    }
    client = tenant.client

    assert client.get(URL, headers=reader).status_code == 200
    for response in (
        client.post(URL, json={"network": "10.51.0.0/16"}, headers=reader),
        client.patch(f"{URL}/{nid}", json={}, headers=reader),
        client.delete(f"{URL}/{nid}", headers=reader),
    ):
        assert "ip_auth:write" in assert_error(response, 403, "forbidden")["message"]
    assert (
        "ip_auth:read"
        in assert_error(client.get(URL, headers=smtp_users), 403, "forbidden")["message"]
    )
    with httpx.Client(base_url=tenant.server.base_url) as anonymous:
        assert_error(anonymous.get(URL), 401, "unauthorized")
    assert [item["id"] for item in client.get(URL).json()["data"]] == [nid]
