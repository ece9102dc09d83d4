"""Native /api/v1/providers: the Sendmux document's example, every route, and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Tenant
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer

SPEC_EXAMPLE = {
    "name": "Transactional SMTP",
    "smtp_host": "smtp.example.com",
    "smtp_port": 587,
    "smtp_protocol": "starttls",
    "smtp_username": "api-user",
    "smtp_password": "smtp-password",
}
ITEM_FIELDS = {
    "id",
    "name",
    "type",
    "status",
    "status_reason",
    "is_active",
    "is_shared",
    "is_editable",
    "allowed_actions",
    "smtp_host",
    "smtp_port",
    "smtp_protocol",
    "smtp_username",
    "has_smtp_password",
    "from_email",
    "from_name",
    "reply_to_email",
    "reply_to_name",
    "oauth_email",
    "has_refresh_token",
    "quotas",
    "percentage",
    "tracking_domain",
    "created_at",
    "updated_at",
    "last_tested_at",
    "last_used_at",
    "variables",
}


def create(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = tenant.client.post("/api/v1/providers", json={**SPEC_EXAMPLE, **overrides})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def provider_count(tenant: Tenant) -> int:
    response = tenant.client.get("/api/v1/providers", params={"limit": 100})
    assert response.status_code == 200
    return len(response.json()["data"])


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["meta"]["request_id"].startswith("req_")
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_spec_example_creates_a_provider(tenant: Tenant) -> None:
    response = tenant.client.post(
        "/api/v1/providers",
        json=SPEC_EXAMPLE,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["ok"] is True
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    data = body["data"]
    assert set(data) >= ITEM_FIELDS
    assert data["id"].startswith("dprov_")
    assert data["type"] == "smtp"
    assert data["status"] == "active" and data["is_active"] is True
    assert data["smtp_host"] == "smtp.example.com"
    assert data["smtp_port"] == 587
    assert data["smtp_protocol"] == "starttls"
    assert data["smtp_username"] == "api-user"
    assert data["has_smtp_password"] is True
    assert data["has_refresh_token"] is False
    assert data["allowed_actions"] == {
        "update": True,
        "delete": True,
        "activate": False,
        "deactivate": True,
        "test": True,
        "update_variables": True,
    }
    assert data["quotas"] == {
        "per_second": None,
        "per_minute": None,
        "per_hour": None,
        "per_day": None,
    }
    assert data["variables"] == {}
    assert data["created_at"].endswith("Z")
    assert "smtp-password" not in response.text


def test_get_update_delete_round_trip(tenant: Tenant) -> None:
    created = create(
        tenant,
        from_email="sender@example.com",
        from_name="Acme",
        reply_to_email="support@example.com",
        reply_to_name="Support",
        quotas={"per_second": 5, "per_day": {"min": 100, "max": 1000}},
        percentage=40,
        tracking_domain="click.example.com",
        variables={"region": "eu"},
    )
    pid = created["id"]
    fetched = tenant.client.get(f"/api/v1/providers/{pid}").json()["data"]
    assert fetched["quotas"]["per_second"] == {"min": 5, "max": 5}
    assert fetched["quotas"]["per_day"] == {"min": 100, "max": 1000}
    assert fetched["percentage"] == 40
    assert fetched["variables"] == {"region": "eu"}

    patched = tenant.client.patch(
        f"/api/v1/providers/{pid}",
        json={"name": "Renamed", "from_email": None, "quotas": {"per_day": None}, "variables": {}},
    )
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert data["name"] == "Renamed"
    assert data["from_email"] is None
    assert data["from_name"] == "Acme"  # omitted: kept
    assert data["quotas"]["per_day"] is None
    assert data["quotas"]["per_second"] == {"min": 5, "max": 5}
    assert data["variables"] == {}
    assert data["has_smtp_password"] is True

    deleted = tenant.client.delete(f"/api/v1/providers/{pid}")
    assert deleted.status_code == 200
    assert deleted.json()["data"] == {"deleted": True, "id": pid}
    assert_error(tenant.client.get(f"/api/v1/providers/{pid}"), 404, "not_found")
    assert_error(tenant.client.delete(f"/api/v1/providers/{pid}"), 404, "not_found")


def test_list_pages_with_a_cursor_and_filters_by_status(tenant: Tenant) -> None:
    ids = [create(tenant, name=f"p{i}")["id"] for i in range(5)]
    tenant.client.post(f"/api/v1/providers/{ids[1]}/deactivate")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = tenant.client.get("/api/v1/providers", params=params).json()
        pages += 1
        seen += [item["id"] for item in body["data"]]
        assert "variables" not in body["data"][0]
        if not body["pagination"]["has_more"]:
            assert body["pagination"]["next_cursor"] is None
            break
        cursor = body["pagination"]["next_cursor"]
    assert seen == ids
    assert pages == 3
    inactive = tenant.client.get("/api/v1/providers", params={"status": "inactive"}).json()
    assert [item["id"] for item in inactive["data"]] == [ids[1]]
    assert_error(
        tenant.client.get("/api/v1/providers", params={"status": "bogus"}), 400, "validation_error"
    )
    assert_error(
        tenant.client.get("/api/v1/providers", params={"cursor": "%%%"}), 400, "validation_error"
    )
    assert_error(
        tenant.client.get("/api/v1/providers", params={"limit": 0}), 400, "validation_error"
    )


def test_activate_and_deactivate(tenant: Tenant) -> None:
    pid = create(tenant)["id"]
    off = tenant.client.post(f"/api/v1/providers/{pid}/deactivate").json()["data"]
    assert off["is_active"] is False and off["status"] == "inactive"
    assert off["allowed_actions"]["activate"] is True
    on = tenant.client.post(f"/api/v1/providers/{pid}/activate").json()["data"]
    assert on["is_active"] is True and on["status"] == "active"


def test_only_one_default_per_account(tenant: Tenant) -> None:
    first = create(tenant, is_default=True)["id"]
    second = create(tenant, is_default=True)["id"]
    assert tenant.client.get(f"/api/v1/providers/{first}").json()["data"]["is_default"] is False
    assert tenant.client.get(f"/api/v1/providers/{second}").json()["data"]["is_default"] is True
    tenant.client.patch(f"/api/v1/providers/{first}", json={"is_default": True})
    assert tenant.client.get(f"/api/v1/providers/{second}").json()["data"]["is_default"] is False


def test_connection_test_succeeds_against_a_real_starttls_server(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    pid = create(
        tenant,
        smtp_host=smtp_starttls.host,
        smtp_port=smtp_starttls.port,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
    )["id"]
    response = tenant.client.post(f"/api/v1/providers/{pid}/test")
    assert response.status_code == 200, response.text
    result = response.json()["data"]
    assert result["success"] is True, result
    assert result["latency_ms"] >= 0 and result["tested_at"].endswith("Z")
    assert smtp_starttls.messages == []  # a connection test sends nothing
    provider = tenant.client.get(f"/api/v1/providers/{pid}").json()["data"]
    assert provider["last_tested_at"] is not None
    assert provider["status"] == "active" and provider["status_reason"] is None


def test_connection_test_reports_a_wrong_password(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    pid = create(
        tenant,
        smtp_host=smtp_starttls.host,
        smtp_port=smtp_starttls.port,
        smtp_username=SMTP_USER,
        smtp_password="wrong-password-123",
    )["id"]
    response = tenant.client.post(f"/api/v1/providers/{pid}/test")
    result = response.json()["data"]
    assert result["success"] is False
    assert "authentication" in result["message"].lower()
    assert "wrong-password-123" not in response.text
    provider = tenant.client.get(f"/api/v1/providers/{pid}").json()["data"]
    assert provider["status"] == "error"
    assert "authentication" in provider["status_reason"].lower()


def test_connection_test_reports_a_refused_port(tenant: Tenant, refused_port: int) -> None:
    pid = create(tenant, smtp_host="127.0.0.1", smtp_port=refused_port)["id"]
    result = tenant.client.post(f"/api/v1/providers/{pid}/test").json()["data"]
    assert result["success"] is False
    assert "connect" in result["message"].lower()


def test_idempotency_key_replays_and_conflicts(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "providers-create-20260525-001"}
    first = tenant.client.post("/api/v1/providers", json=SPEC_EXAMPLE, headers=headers)
    again = tenant.client.post("/api/v1/providers", json=SPEC_EXAMPLE, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert provider_count(tenant) == 1
    other = tenant.client.post(
        "/api/v1/providers", json={**SPEC_EXAMPLE, "name": "Other"}, headers=headers
    )
    assert_error(other, 409, "idempotency_conflict")
    assert provider_count(tenant) == 1
    too_long = tenant.client.post(
        "/api/v1/providers", json=SPEC_EXAMPLE, headers={"Idempotency-Key": "k" * 256}
    )
    assert_error(too_long, 400, "validation_error")
    assert provider_count(tenant) == 1


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"smtp_port": "587"}, "smtp_port"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"smtp_port": 70000}, "smtp_port"),
        ({"smtp_protocol": "tls1.3"}, "smtp_protocol"),
        ({"smtp_host": "not a host!"}, "smtp_host"),
        ({"name": "Evil\r\nBcc: victim@example.com"}, "name"),
        ({"name": ""}, "name"),
        ({"from_email": "not-an-email"}, "from_email"),
        ({"percentage": 101}, "percentage"),
        ({"quotas": {"per_hour": {"min": 10, "max": 5}}}, "quotas.per_hour"),
        ({"quotas": {"per_hour": -1}}, "quotas.per_hour"),
        ({"variables": {"k": 1}}, "variables.k"),
        ({"surprise": True}, "surprise"),
        ({"smtp_password": None}, "smtp_password"),
    ],
)
def test_bad_input_is_a_400_and_writes_nothing(
    tenant: Tenant, change: dict[str, Any], param: str
) -> None:
    response = tenant.client.post("/api/v1/providers", json={**SPEC_EXAMPLE, **change})
    error = assert_error(response, 400, "validation_error")
    assert error["param"] == param or any(e["field"] == param for e in error["errors"])
    assert provider_count(tenant) == 0


def test_bad_input_on_update_keeps_the_provider_as_it_was(tenant: Tenant) -> None:
    pid = create(tenant)["id"]
    before = tenant.client.get(f"/api/v1/providers/{pid}").json()["data"]
    for body in ({"smtp_port": "25"}, {"name": None}, {"from_email": "x"}, {"nope": 1}):
        assert_error(
            tenant.client.patch(f"/api/v1/providers/{pid}", json=body), 400, "validation_error"
        )
    assert tenant.client.get(f"/api/v1/providers/{pid}").json()["data"] == before


def test_malformed_bodies_are_400(tenant: Tenant) -> None:
    raw = {"Content-Type": "application/json"}
    for content in (b"{not json", b"\xff\xfe{}", b"[1, 2]", b'"text"'):
        response = tenant.client.post("/api/v1/providers", content=content, headers=raw)
        assert_error(response, 400, "validation_error")
    assert provider_count(tenant) == 0


def test_unknown_ids_are_404(tenant: Tenant) -> None:
    for pid in ("dprov_000000000000000000000000", "12345678", "../etc/passwd"):
        assert_error(tenant.client.get(f"/api/v1/providers/{pid}"), 404, "not_found")
        assert_error(tenant.client.patch(f"/api/v1/providers/{pid}", json={}), 404, "not_found")
        assert_error(tenant.client.post(f"/api/v1/providers/{pid}/test"), 404, "not_found")


def test_authentication_and_permissions(tenant: Tenant) -> None:
    base = tenant.server.base_url
    with httpx.Client(base_url=base) as anonymous:
        assert_error(anonymous.get("/api/v1/providers"), 401, "unauthorized")
        bad = {"Authorization": "Bearer mg_00000000_nope"}
        assert_error(anonymous.get("/api/v1/providers", headers=bad), 401, "unauthorized")
        assert_error(
            anonymous.get("/api/v1/providers", headers={"Authorization": "Basic abc"}),
            401,
            "unauthorized",
        )
        reader = tenant.key_with("providers:read")
        response = anonymous.get("/api/v1/providers", headers={"X-API-Key": reader})
        assert response.status_code == 200
        denied = anonymous.post(
            "/api/v1/providers", json=SPEC_EXAMPLE, headers={"Authorization": f"Bearer {reader}"}
        )
        error = assert_error(denied, 403, "forbidden")
        assert "providers:write" in error["message"]
    assert provider_count(tenant) == 0


def test_providers_are_private_to_their_account(tenant: Tenant, live_server: Any) -> None:
    pid = create(tenant)["id"]
    # A second tenant on the same server sees nothing of the first one's.
    from conftest import new_tenant

    with new_tenant(live_server) as other:
        assert provider_count(other) == 0
        assert_error(other.client.get(f"/api/v1/providers/{pid}"), 404, "not_found")
        assert_error(other.client.delete(f"/api/v1/providers/{pid}"), 404, "not_found")
    assert provider_count(tenant) == 1
