"""MailSage ``POST /api/v1/smtp/configs/:id/test``: a real test email through real upstreams."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import Tenant
from smtp_servers import HOST, SMTP_PASSWORD, SMTP_USER, SmtpServer

BASE = "/api/v1/smtp/configs"
FROM = "noreply@yourdomain.com"
DOC_TEST = {"recipient": "test@example.com"}  # the document's request body, verbatim


def add(tenant: Tenant, port: int, *, password: str = SMTP_PASSWORD, use_tls: bool = True) -> int:
    response = tenant.client.post(
        BASE,
        json={
            "name": "Upstream",
            "host": HOST,
            "port": port,
            "username": SMTP_USER,
            "password": password,
            "use_tls": use_tls,
            "from_email": FROM,
        },
    )
    assert response.status_code == 201, response.text
    config_id: int = response.json()["id"]
    return config_id


def native(tenant: Tenant, config_id: int) -> dict[str, Any]:
    data: dict[str, Any] = tenant.client.get(f"/api/v1/providers/{config_id}").json()["data"]
    return data


def smtp_error(response: httpx.Response, code: str, title: str) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "code", "message"}
    assert (body["error"], body["code"]) == (title, code)
    assert SMTP_PASSWORD not in response.text and "wrong-password" not in response.text
    message: str = body["message"]
    return message


def test_doc_test_email_arrives(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    config_id = add(tenant, smtp_starttls.port)

    response = tenant.client.post(f"{BASE}/{config_id}/test", json=DOC_TEST)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Test email sent successfully"
    [received] = smtp_starttls.messages
    assert body["delivery_id"] == received.parsed["Message-ID"]
    assert body["delivery_id"].endswith("@yourdomain.com>")
    assert received.mail_from == FROM
    assert received.rcpt_tos == ["test@example.com"]
    assert (received.tls, received.login) == (True, SMTP_USER)
    [sender] = received.parsed["From"].addresses
    assert sender.addr_spec == FROM
    assert received.parsed["To"] == "test@example.com"
    assert received.parsed["Subject"] == "Mailgate test message"
    provider = native(tenant, config_id)
    assert provider["status"] == "active"
    assert provider["last_tested_at"] is not None


def test_wrong_password_is_smtp_auth_error(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    config_id = add(tenant, smtp_starttls.port, password="wrong-password")

    response = tenant.client.post(f"{BASE}/{config_id}/test", json=DOC_TEST)

    message = smtp_error(response, "smtp_auth_error", "SMTP authentication failed")
    assert "535" in message
    assert smtp_starttls.messages == []
    assert [a.success for a in smtp_starttls.auth_attempts] == [False]
    provider = native(tenant, config_id)
    assert provider["status"] == "error"
    assert provider["last_tested_at"] is not None


def test_refused_port_is_smtp_connection_error(tenant: Tenant, refused_port: int) -> None:
    config_id = add(tenant, refused_port)

    response = tenant.client.post(f"{BASE}/{config_id}/test", json=DOC_TEST)

    message = smtp_error(response, "smtp_connection_error", "SMTP connection failed")
    assert "refused" in message


def test_tls_failure_counts_as_connection_error(tenant: Tenant, smtp_plain: SmtpServer) -> None:
    config_id = add(tenant, smtp_plain.port)  # use_tls, but the server offers no STARTTLS

    response = tenant.client.post(f"{BASE}/{config_id}/test", json=DOC_TEST)

    message = smtp_error(response, "smtp_connection_error", "SMTP connection failed")
    assert "STARTTLS" in message
    assert smtp_plain.messages == []


def test_security_set_natively_is_used(tenant: Tenant, smtp_implicit_tls: SmtpServer) -> None:
    """Implicit TLS on a port other than 465, set through the native API, is kept and used."""
    config_id = add(tenant, smtp_implicit_tls.port)
    patched = tenant.client.patch(f"/api/v1/providers/{config_id}", json={"smtp_protocol": "tls"})
    assert patched.status_code == 200

    response = tenant.client.post(f"{BASE}/{config_id}/test", json=DOC_TEST)

    assert response.status_code == 200, response.text
    [received] = smtp_implicit_tls.messages
    assert received.tls is True
    listed = tenant.client.get(BASE).json()["data"]
    assert [c["use_tls"] for c in listed] == [True]


def test_bad_recipient_is_400_and_nothing_is_sent(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    config_id = add(tenant, smtp_starttls.port)
    for body in (
        {},
        {"recipient": "not-an-address"},
        {"recipient": "a@example.com\r\nBcc: b@example.com"},
        {"recipient": ["test@example.com"]},
        {"recipient": "test@example.com", "subject": "x"},
    ):
        response = tenant.client.post(f"{BASE}/{config_id}/test", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_request"
    assert smtp_starttls.messages == []
    assert smtp_starttls.auth_attempts == []
    assert native(tenant, config_id)["last_tested_at"] is None
