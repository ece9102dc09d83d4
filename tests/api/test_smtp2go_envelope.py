"""SMTP2GO ``/v3``: every answer is ``{"request_id": "<uuid>", "data": ...}``, errors
included, with SMTP2GO's statuses and ``E_ApiResponseCodes.*`` codes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.api import smtp2go
from mailgate.api.smtp2go.mapping import ENDPOINTS

URL = "/v3/api_keys/permissions"


def body_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"request_id", "data"}
    uuid.UUID(body["request_id"])
    return body


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    data: dict[str, Any] = body_of(response, status)["data"]
    assert data["error_code"] == f"E_ApiResponseCodes.{code}"
    assert isinstance(data["error"], str) and data["error"]
    return data


def header_key(tenant: Tenant) -> dict[str, str]:
    return {"X-Smtp2go-Api-Key": tenant.key}


# --- the envelope ---------------------------------------------------------------------------------


def test_request_id_is_a_uuid_carrying_the_x_request_id(tenant: Tenant) -> None:
    response = tenant.client.post(URL, json={})

    body = body_of(response, 200)
    digits = uuid.UUID(body["request_id"]).hex
    logged = response.headers["x-request-id"].removeprefix("req_")
    assert digits[:12] + digits[13:16] + digits[17:26] == logged
    assert uuid.UUID(body["request_id"]).version == 4


def test_request_ids_differ_per_request(tenant: Tenant) -> None:
    first = body_of(tenant.client.post(URL), 200)["request_id"]
    second = body_of(tenant.client.post(URL), 200)["request_id"]

    assert first != second


def test_errors_carry_the_request_id_too(live_server: LiveServer) -> None:
    response = httpx.post(live_server.base_url + URL, json={})

    body = body_of(response, 401)
    digits = uuid.UUID(body["request_id"]).hex
    assert digits[:12] + digits[13:16] + digits[17:26] == response.headers["x-request-id"][4:]


def test_every_served_endpoint_is_in_the_permissions_table() -> None:
    app = FastAPI()
    smtp2go.surface.include(app)

    served = {path.removeprefix("/v3") for path in app.openapi()["paths"]}

    assert served == set(ENDPOINTS)


# --- bad bodies: 400 NON_VALIDATING_IN_PAYLOAD ----------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"api_key": "x",}', b"\xff\xfe{}", b'{"api_key": "\xe9"}']
)
def test_a_body_that_is_not_json_is_400(tenant: Tenant, content: bytes) -> None:
    with_key = tenant.client.post(URL, content=content, headers=header_key(tenant))
    without_key = httpx.post(tenant.server.base_url + URL, content=content)

    for response in (with_key, without_key):
        data = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
        assert data["field_validation_errors"]["fieldname"] == ""


@pytest.mark.parametrize("body", [[], "text", 42, True])
def test_a_body_that_is_not_an_object_is_400(tenant: Tenant, body: Any) -> None:
    response = tenant.client.post(URL, json=body, headers=header_key(tenant))

    error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")


def test_an_unknown_field_is_400_with_field_validation_errors(tenant: Tenant) -> None:
    body = {"api_key": tenant.key, "sender": "a@example.com", "to": None}

    response = tenant.client.post(URL, content=json.dumps(body))

    data = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
    errors = data["field_validation_errors"]
    assert errors["fieldname"] in ("sender", "to")
    assert errors["message"]
    assert {e["fieldname"] for e in errors["errors"]} == {"sender", "to"}
    assert tenant.key not in response.text


def test_a_null_body_is_no_parameters(tenant: Tenant) -> None:
    response = tenant.client.post(URL, content=b"null", headers=header_key(tenant))

    assert body_of(response, 200)["data"] == list(ENDPOINTS)


# --- unknown routes and methods, in SMTP2GO's shape -----------------------------------------------


@pytest.mark.parametrize("path", ["/v3/nope", "/v3/email/nope", "/v3/api_keys/permissions/x"])
def test_unknown_endpoints_are_404(tenant: Tenant, path: str) -> None:
    error_of(tenant.client.post(path, json={}), 404, "NOT_FOUND")


def test_an_unknown_endpoint_without_a_key_is_still_404(live_server: LiveServer) -> None:
    error_of(httpx.post(live_server.base_url + "/v3/nope", json={}), 404, "NOT_FOUND")


def test_a_wrong_method_is_405(tenant: Tenant) -> None:
    error_of(tenant.client.get(URL), 405, "METHOD_NOT_ALLOWED")
    error_of(tenant.client.delete(URL), 405, "METHOD_NOT_ALLOWED")


# --- limits: 429 with integer x-ratelimit-* headers, oversized bodies -----------------------------

LIMIT = 3


@pytest.fixture(scope="module")
def tight_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, tls_ca_bundle: Path
) -> Iterator[LiveServer]:
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("tight"),
        tls_ca_bundle,
        api_rate_limit=f"{LIMIT}/minute",
        max_request_bytes=1024,
    )
    with serve(settings) as server:
        yield server


def rate_headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["x-ratelimit-limit"]),
        int(response.headers["x-ratelimit-remaining"]),
        int(response.headers["x-ratelimit-reset"]),
    )


def test_rate_limited_requests_are_429_with_integer_headers(tight_server: LiveServer) -> None:
    with new_tenant(tight_server) as tenant:
        answers = [tenant.client.post(URL, json={"api_key": tenant.key}) for _ in range(LIMIT)]
        refused = tenant.client.post(URL, json={"api_key": tenant.key})

    assert [rate_headers(a)[:2] for a in answers] == [(LIMIT, n) for n in range(LIMIT - 1, -1, -1)]
    error_of(refused, 429, "RATE_LIMIT_EXCEEDED")
    limit, remaining, reset = rate_headers(refused)
    assert (limit, remaining) == (LIMIT, 0)
    assert reset > time.time() - 1
    assert int(refused.headers["retry-after"]) >= 1


def test_rate_limits_are_per_key(tight_server: LiveServer) -> None:
    with new_tenant(tight_server) as first, new_tenant(tight_server) as second:
        for _ in range(LIMIT + 1):
            first.client.post(URL)

        assert second.client.post(URL).status_code == 200


def test_an_oversized_body_is_400(tight_server: LiveServer) -> None:
    with new_tenant(tight_server) as tenant:
        body = {"api_key": tenant.key, "padding": "x" * 2048}
        declared = tenant.client.post(URL, content=json.dumps(body))

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies as it streams
            yield json.dumps(body).encode()

        streamed = tenant.client.post(URL, content=chunks())

    for answer in (declared, streamed):
        data = error_of(answer, 400, "NON_VALIDATING_IN_PAYLOAD")
        assert "1024" in data["field_validation_errors"]["message"]
