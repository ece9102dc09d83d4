"""SMTP2GO /v3/ip_auth/...: view, patch (adds or changes), remove, in SMTP2GO's shapes; one
account per address; options Mailgate lacks; permissions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from conftest import Tenant, new_tenant
from mailgate.services import ip_auth as service


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


def send(tenant: Tenant, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        payload = json.dumps({"api_key": tenant.key, **(body or {})})
        return client.request(method, path, content=payload)


def owner(tenant: Tenant, ip: str) -> int | None:
    async def work(session: Any) -> int | None:
        return await service.account_for_ip(session=session, ip=ip)

    return tenant.server.run(work)  # type: ignore[return-value]


@pytest.mark.parametrize(("path", "i"), [("/v3/ip_auth/patch", 0), ("/v3/ip_auth/edit", 1)])
def test_patch_adds_then_changes_and_view_lists(tenant: Tenant, path: str, i: int) -> None:
    # The test server's database is shared by every test: each one lists its own networks.
    single, network = f"203.0.113.{7 + i}", f"198.51.{100 + i}.0/24"
    [added] = data_of(send(tenant, "PATCH", path, {"ip_address": single, "description": "printer"}))
    assert added["ip_address"] == single
    assert added["description"] == "printer"
    assert added["sending_allowed"] is True and added["status"] == "allowed"
    assert added["custom_ratelimit"] is False and added["custom_ratelimit_period"] == "0:00:00"
    assert owner(tenant, single) == tenant.account_id

    [changed] = data_of(
        send(tenant, "PATCH", path, {"ip_address": f"{single}/32", "description": "copier"})
    )
    assert changed["description"] == "copier"
    [kept] = data_of(send(tenant, "PATCH", path, {"ip_address": single}))
    assert kept["description"] == "copier"
    data_of(send(tenant, "PATCH", path, {"ip_address": network}))

    view = data_of(send(tenant, "POST", "/v3/ip_auth/view"))
    assert [r["ip_address"] for r in view["results"]] == [single, network]
    assert (view["default_ratelimit_value"], view["default_ratelimit_period"]) == (0, "unlimited")
    one = data_of(send(tenant, "POST", "/v3/ip_auth/view", {"ip_address": network}))
    assert [r["ip_address"] for r in one["results"]] == [network]
    none = data_of(send(tenant, "POST", "/v3/ip_auth/view", {"ip_address": "203.0.113.200"}))
    assert none["results"] == []
    native = tenant.client.get("/api/v1/ip-auth").json()["data"]
    assert [n["network"] for n in native] == [f"{single}/32", network]


def test_remove(tenant: Tenant) -> None:
    send(tenant, "PATCH", "/v3/ip_auth/patch", {"ip_address": "2001:db8:5::/48"})

    [removed] = data_of(
        send(tenant, "POST", "/v3/ip_auth/remove", {"ip_address": "2001:DB8:5::/48"})
    )["results"]

    assert removed["ip_address"] == "2001:db8:5::/48"
    assert owner(tenant, "2001:db8:5::1") is None
    error_of(
        send(tenant, "POST", "/v3/ip_auth/remove", {"ip_address": "2001:db8:5::/48"}),
        404,
        "NOT_FOUND",
    )


def test_another_accounts_address_is_refused(tenant: Tenant, live_server: Any) -> None:
    send(tenant, "PATCH", "/v3/ip_auth/patch", {"ip_address": "100.64.0.0/16"})

    with new_tenant(live_server) as other:
        refused = send(other, "PATCH", "/v3/ip_auth/patch", {"ip_address": "100.64.3.3"})
        assert "another account" in error_of(refused, 402, "API_EXCEPTION")["error"]
        error_of(
            send(other, "POST", "/v3/ip_auth/remove", {"ip_address": "100.64.0.0/16"}),
            404,
            "NOT_FOUND",
        )
        assert data_of(send(other, "POST", "/v3/ip_auth/view"))["results"] == []
    assert owner(tenant, "100.64.3.3") == tenant.account_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "ip_address"),
        ({"ip_address": ""}, "ip_address"),
        ({"ip_address": "not-an-ip"}, "ip_address"),
        ({"ip_address": "10.0.0.1/8"}, "ip_address"),
        ({"ip_address": "0.0.0.0/0"}, "ip_address"),
        ({"ip_address": "10.0.0.1\r\n"}, "ip_address"),
        ({"ip_address": 167772161}, "ip_address"),
        ({"ip_address": "10.60.0.0/16", "description": "a\nb"}, "description"),
        ({"ip_address": "10.60.0.0/16", "custom_ratelimit": True}, "custom_ratelimit"),
        ({"ip_address": "10.60.0.0/16", "status": "blocked"}, "status"),
        ({"ip_address": "10.60.0.0/16", "ip_pool": 7}, "ip_pool"),
        ({"ip_address": "10.60.0.0/16", "username": "x"}, "username"),
    ],
)
def test_bad_patch_bodies_are_400(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    response = send(tenant, "PATCH", "/v3/ip_auth/patch", body)

    data = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
    assert field in {e["fieldname"] for e in data["field_validation_errors"]["errors"]}
    assert data_of(send(tenant, "POST", "/v3/ip_auth/view"))["results"] == []


def test_a_bad_address_to_view_or_remove_is_400(tenant: Tenant) -> None:
    for path in ("/v3/ip_auth/view", "/v3/ip_auth/remove"):
        data = error_of(
            send(tenant, "POST", path, {"ip_address": "nope"}), 400, "NON_VALIDATING_IN_PAYLOAD"
        )
        assert data["field_validation_errors"]["fieldname"] == "ip_address"
    error_of(send(tenant, "POST", "/v3/ip_auth/remove", {}), 400, "NON_VALIDATING_IN_PAYLOAD")


def test_permissions(tenant: Tenant) -> None:
    send(tenant, "PATCH", "/v3/ip_auth/patch", {"ip_address": "10.70.0.0/16"})
    reader = tenant.key_with("ip_auth:read")
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        headers = {"X-Smtp2go-Api-Key": reader}
        assert client.post("/v3/ip_auth/view", headers=headers).status_code == 200
        for method, path in (("PATCH", "/v3/ip_auth/patch"), ("POST", "/v3/ip_auth/remove")):
            response = client.request(
                method, path, headers=headers, content=json.dumps({"ip_address": "10.70.0.0/16"})
            )
            error_of(response, 403, "ENDPOINT_PERMISSION_DENIED")
        error_of(client.post("/v3/ip_auth/view"), 401, "API_KEY_INVALID")
    assert owner(tenant, "10.70.1.1") == tenant.account_id
