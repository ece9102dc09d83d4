"""SMTP2GO ``/v3``: where the key travels (header, JSON body with or without Content-Type,
Bearer) and what a missing or wrong key gets, exercised on ``POST /v3/api_keys/permissions``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import LiveServer, Tenant
from mailgate.api.smtp2go.mapping import ENDPOINTS

URL = "/v3/api_keys/permissions"
EVERY_KEY_MAY = ["/api_keys/permissions"]
FULL_KEY_MAY = list(ENDPOINTS)  # the tenant's key holds every permission


@pytest.fixture
def anonymous(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client that sends no key unless told to (the tenant's client always sends Bearer)."""
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        yield client


def data_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"request_id", "data"}
    uuid.UUID(body["request_id"])
    return body["data"]


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    data: dict[str, Any] = data_of(response, status)
    assert data["error_code"] == f"E_ApiResponseCodes.{code}"
    assert isinstance(data["error"], str) and data["error"]
    return data


# --- the document's two ways, and the others ------------------------------------------------------


def test_key_in_the_x_smtp2go_api_key_header(anonymous: httpx.Client, tenant: Tenant) -> None:
    headers = {"Content-Type": "application/json", "X-Smtp2go-Api-Key": tenant.key}

    response = anonymous.post(URL, headers=headers, json={})

    assert data_of(response) == FULL_KEY_MAY


def test_key_in_the_header_with_no_body_at_all(anonymous: httpx.Client, tenant: Tenant) -> None:
    response = anonymous.post(URL, headers={"X-Smtp2go-Api-Key": tenant.key})

    assert data_of(response) == FULL_KEY_MAY


def test_key_in_a_json_body(anonymous: httpx.Client, tenant: Tenant) -> None:
    response = anonymous.post(URL, json={"api_key": tenant.key})

    assert response.request.headers["content-type"] == "application/json"
    assert data_of(response) == FULL_KEY_MAY


def test_key_in_a_json_body_sent_without_content_type(
    anonymous: httpx.Client, tenant: Tenant
) -> None:
    # As the official Python client sends it: JSON bytes and no Content-Type header.
    request = anonymous.build_request("POST", URL, content=json.dumps({"api_key": tenant.key}))
    assert "content-type" not in request.headers

    response = anonymous.send(request)

    assert data_of(response) == FULL_KEY_MAY


def test_key_in_a_json_body_labelled_as_form_data(anonymous: httpx.Client, tenant: Tenant) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    response = anonymous.post(URL, content=json.dumps({"api_key": tenant.key}), headers=headers)

    assert data_of(response) == FULL_KEY_MAY


def test_key_as_bearer_or_x_api_key(anonymous: httpx.Client, tenant: Tenant) -> None:
    bearer = anonymous.post(URL, headers={"Authorization": f"Bearer {tenant.key}"})
    x_api_key = anonymous.post(URL, headers={"X-API-Key": tenant.key})

    assert data_of(bearer) == FULL_KEY_MAY
    assert data_of(x_api_key) == FULL_KEY_MAY


def test_a_key_without_any_permission_may_still_ask(
    anonymous: httpx.Client, tenant: Tenant
) -> None:
    response = anonymous.post(URL, json={"api_key": tenant.key_with()})

    assert data_of(response) == EVERY_KEY_MAY


# --- no key, wrong key: 401 in SMTP2GO's shape ----------------------------------------------------


def test_no_key_is_401(anonymous: httpx.Client) -> None:
    error_of(anonymous.post(URL, json={}), 401, "API_KEY_INVALID")
    error_of(anonymous.post(URL), 401, "API_KEY_INVALID")
    error_of(anonymous.post(URL, json={"api_key": ""}), 401, "API_KEY_INVALID")
    error_of(anonymous.post(URL, json={"api_key": None}), 401, "API_KEY_INVALID")


@pytest.mark.parametrize(
    "bad_key", ["api-XXXXXXXXXXXX", "mg_00000000_not-a-real-key", "mg__", "key with spaces"]
)
def test_a_wrong_key_is_401_wherever_it_travels(
    anonymous: httpx.Client, tenant: Tenant, bad_key: str
) -> None:
    in_header = anonymous.post(URL, headers={"X-Smtp2go-Api-Key": bad_key}, json={})
    in_body = anonymous.post(URL, content=json.dumps({"api_key": bad_key}))

    for response in (in_header, in_body):
        error_of(response, 401, "API_KEY_INVALID")
        assert bad_key not in response.text  # a presented key is never echoed
        assert tenant.key not in response.text


def test_a_revoked_looking_key_with_the_right_prefix_is_401(
    anonymous: httpx.Client, tenant: Tenant
) -> None:
    prefix = "_".join(tenant.key.split("_")[:2])
    forged = f"{prefix}_forged-secret"

    error_of(anonymous.post(URL, json={"api_key": forged}), 401, "API_KEY_INVALID")


def test_a_key_that_is_not_a_string_is_401(anonymous: httpx.Client, tenant: Tenant) -> None:
    error_of(anonymous.post(URL, json={"api_key": 12345}), 401, "API_KEY_INVALID")
    error_of(anonymous.post(URL, json={"api_key": [tenant.key]}), 401, "API_KEY_INVALID")
