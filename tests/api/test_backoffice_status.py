"""Back Office ``GET /api/v2/mail/providers/{providerId}/status`` against real SMTP servers."""

from __future__ import annotations

import json
from typing import Any

import httpx

from conftest import Tenant
from smtp_servers import HOST, SMTP_PASSWORD, SMTP_USER, SmtpServer

BASE = "/api/v2/mail/providers"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def create(tenant: Tenant, port: int, encryption: str, password: str = SMTP_PASSWORD) -> int:
    body = {
        "driver": "smtp",
        "host": HOST,
        "port": port,
        "username": SMTP_USER,
        "password": password,
        "sendFrom": "sender@example.com",
        "sendFromName": "Sender",
        "encryption": encryption,
        "isEnabled": 1,
    }
    response = tenant.client.post(BASE, content=json.dumps(body), headers=FORM)
    assert response.status_code == 201, response.text
    provider_id: int = response.json()["id"]
    return provider_id


def doc_status(tenant: Tenant, provider_id: int) -> httpx.Response:
    """The document's request, as printed."""
    return tenant.client.get(
        f"{BASE}/{provider_id}/status", headers={"Authorization": f"Bearer {tenant.key}"}
    )


def get(tenant: Tenant, provider_id: int) -> dict[str, Any]:
    body: dict[str, Any] = tenant.client.get(f"{BASE}/{provider_id}").json()
    return body


def test_doc_status_ssl_with_implicit_tls(tenant: Tenant, smtp_implicit_tls: SmtpServer) -> None:
    provider_id = create(tenant, smtp_implicit_tls.port, "ssl")

    response = doc_status(tenant, provider_id)

    assert response.status_code == 204
    assert response.content == b""
    assert smtp_implicit_tls.messages == []  # validated, nothing sent
    assert [(a.login, a.success) for a in smtp_implicit_tls.auth_attempts] == [(SMTP_USER, True)]
    item = get(tenant, provider_id)
    assert (item["status"], item["statusReason"]) == ("active", None)
    assert item["lastTestedAt"] is not None


def test_doc_status_tls_with_starttls(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    provider_id = create(tenant, smtp_starttls.port, "tls")

    response = doc_status(tenant, provider_id)

    assert response.status_code == 204
    assert response.content == b""
    assert smtp_starttls.messages == []
    assert [a.success for a in smtp_starttls.auth_attempts] == [True]
    assert get(tenant, provider_id)["lastTestedAt"] is not None


def test_wrong_password_is_422_and_recorded(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    provider_id = create(tenant, smtp_starttls.port, "tls", password="wrong-password")
    before = get(tenant, provider_id)
    assert before["lastTestedAt"] is None

    response = doc_status(tenant, provider_id)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "smtp_auth_error"
    assert error["message"].startswith("SMTP authentication failed:")
    assert "535" in error["message"]
    assert "wrong-password" not in response.text and SMTP_PASSWORD not in response.text
    assert response.headers["content-language"] == "en"
    assert smtp_starttls.messages == []
    after = get(tenant, provider_id)
    assert after["status"] == "error"
    assert after["statusReason"].startswith("SMTP authentication failed")
    assert after["lastTestedAt"] is not None


def test_status_recovers_after_a_fix(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    provider_id = create(tenant, smtp_starttls.port, "tls", password="wrong-password")
    assert doc_status(tenant, provider_id).status_code == 422
    patched = tenant.client.patch(
        f"{BASE}/{provider_id}", content=json.dumps({"password": SMTP_PASSWORD}), headers=FORM
    )
    assert patched.status_code == 200

    assert doc_status(tenant, provider_id).status_code == 204
    item = get(tenant, provider_id)
    assert (item["status"], item["statusReason"]) == ("active", None)


def test_refused_port_is_connection_error(tenant: Tenant, refused_port: int) -> None:
    provider_id = create(tenant, refused_port, "tls")

    response = doc_status(tenant, provider_id)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "smtp_connection_error"
    assert get(tenant, provider_id)["status"] == "error"


def test_wrong_encryption_is_tls_error(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    provider_id = create(tenant, smtp_starttls.port, "ssl")  # implicit TLS against STARTTLS

    response = doc_status(tenant, provider_id)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "smtp_tls_error"
    assert smtp_starttls.auth_attempts == []


def test_status_result_is_seen_natively(tenant: Tenant, smtp_implicit_tls: SmtpServer) -> None:
    provider_id = create(tenant, smtp_implicit_tls.port, "ssl")
    assert doc_status(tenant, provider_id).status_code == 204
    provider = tenant.client.get(f"/api/v1/providers/{provider_id}").json()["data"]
    assert provider["last_tested_at"] == get(tenant, provider_id)["lastTestedAt"]
    assert provider["status"] == "active"
