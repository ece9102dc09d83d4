"""Walk every route of every surface: no response body, header or log line carries a secret."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from conftest import Tenant
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer


def every_operation(client: httpx.Client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    # Deletions last, so every other route still finds the providers.
    return sorted(operations, key=lambda op: (op[0] == "DELETE", op[1], op[0]))


def fill(path: str, public_id: str, numeric_id: int, ids: dict[str, str] | None = None) -> str:
    for name, value in (ids or {}).items():
        path = path.replace(name, value)
    for name in ("{provider_id}", "{providerId}", "{id}"):
        path = path.replace(
            name, public_id if path.startswith("/api/v1/providers") else str(numeric_id)
        )
    return path


def test_no_route_ever_returns_or_logs_a_secret(
    tenant: Tenant, smtp_starttls: SmtpServer, capfd: pytest.CaptureFixture[str]
) -> None:
    refresh_token = "rt-" + secrets.token_hex(16)
    docspace_password = "ds-" + secrets.token_hex(16)
    hostile_password = "hp-" + secrets.token_hex(16)
    created = tenant.client.post(
        "/api/v1/providers",
        json={
            "name": "Secret keeper",
            "smtp_host": smtp_starttls.host,
            "smtp_port": smtp_starttls.port,
            "smtp_protocol": "starttls",
            "smtp_username": SMTP_USER,
            "smtp_password": SMTP_PASSWORD,
            "oauth_email": "owner@example.com",
            "oauth_refresh_token": refresh_token,
            "from_email": "sender@example.com",
        },
    )
    assert created.status_code == 201
    public_id = created.json()["data"]["id"]
    numeric_id = tenant.client.get("/api/v1/smtp/configs").json()["data"][0]["id"]
    saved = tenant.client.post(
        "/api/2.0/smtpsettings/smtp",
        json={
            "host": smtp_starttls.host,
            "port": smtp_starttls.port,
            "senderAddress": "notify@example.com",
            "credentialsUserName": SMTP_USER,
            "credentialsUserPassword": docspace_password,
            "enableSSL": True,
            "enableAuth": True,
        },
    )
    assert saved.status_code == 200
    smtp_user_password = "su-" + secrets.token_hex(16)
    smtp_user = tenant.client.post(
        "/api/v1/smtp-users",
        json={"username": "walker-" + secrets.token_hex(4), "password": smtp_user_password},
    )
    assert smtp_user.status_code == 201
    generated = tenant.client.post(
        "/v3/smtp/add", json={"username": "walker-" + secrets.token_hex(4)}
    ).json()["data"]["results"][0]["email_password"]
    network = tenant.client.post("/api/v1/ip-auth", json={"network": "192.0.2.128/25"})
    assert network.status_code == 201
    ids = {
        "{smtp_user_id}": smtp_user.json()["data"]["id"],
        "{network_id}": network.json()["data"]["id"],
    }
    settings = tenant.server.settings
    forbidden = {
        "provider password": SMTP_PASSWORD,
        "refresh token": refresh_token,
        "DocSpace password": docspace_password,
        "hostile password": hostile_password,
        "SMTP user password": smtp_user_password,
        "generated SMTP user password": generated,
        "API key": tenant.key,
        "secret key": settings.secret_key.get_secret_value() if settings.secret_key else "",
    }
    hostile_body: dict[str, Any] = {
        # Secrets beside invalid fields: an error must not echo what it was given.
        "password": hostile_password,
        "smtp_password": hostile_password,
        "credentialsUserPassword": hostile_password,
        "email_password": hostile_password,
        "port": "not-a-port",
        "smtp_port": "not-a-port",
        "recipient": "owner@example.com",
    }
    operations = every_operation(tenant.client)
    assert len(operations) >= 15
    answers: list[httpx.Response] = []
    for method, template in operations:
        path = fill(template, public_id, numeric_id, ids)
        if method in {"POST", "PUT", "PATCH"}:
            answers.append(tenant.client.request(method, path, json=hostile_body))
            answers.append(tenant.client.request(method, path, json={"recipient": "o@example.com"}))
        answers.append(tenant.client.request(method, path))
        answers.append(httpx.request(method, f"{tenant.server.base_url}{path}"))  # no key
    assert {a.status_code for a in answers} & {200, 201, 204}  # the walk reached real data
    assert not {a.status_code for a in answers} & {500, 502, 503}
    for answer in answers:
        text = answer.text + " " + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
        for what, secret in forbidden.items():
            assert secret not in text, (
                f"{what} leaked by {answer.request.method} {answer.request.url}"
            )
    out, err = capfd.readouterr()
    for what, secret in forbidden.items():
        assert secret not in out + err, f"{what} was logged"
