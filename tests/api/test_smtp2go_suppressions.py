"""SMTP2GO /v3/suppression/add|view|remove in SMTP2GO's shapes (and the seed document's
``email``/``domain``); the same list as the native API's; errors in SMTP2GO's envelope."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from conftest import Tenant


def call(tenant: Tenant, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    # The official Python client's way: the key in the body, no Content-Type.
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        return client.post(path, content=json.dumps({"api_key": tenant.key, **(body or {})}))


def data_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"request_id", "data"}
    uuid.UUID(body["request_id"])
    return body["data"]


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    data: dict[str, Any] = data_of(response, status)
    assert data["error_code"] == f"E_ApiResponseCodes.{code}" and data["error"]
    return data


def test_add_view_remove(tenant: Tenant) -> None:
    added = data_of(
        call(
            tenant,
            "/v3/suppression/add",
            {"email_address": "Temp@Example.com", "block_description": "No longer a customer."},
        )
    )
    assert added == {
        "added": True,
        "block_description": "No longer a customer.",
        "email_address": "temp@example.com",
    }
    again = data_of(call(tenant, "/v3/suppression/add", {"email_address": "temp@example.com"}))
    assert again == {**added, "added": False}
    data_of(call(tenant, "/v3/suppression/add", {"domain": "blocked-domain.example"}))
    data_of(call(tenant, "/v3/suppression/add", {"email": "seed@example.com"}))

    view = data_of(call(tenant, "/v3/suppression/view"))
    assert view["continue_token"] is None and view["total_results"] == 3
    first = view["results"][-1]
    assert set(first) == {
        "block_description",
        "complaint",
        "email_address",
        "reason",
        "subject",
        "timestamp",
    }
    assert first["email_address"] == "temp@example.com" and first["reason"] == "manual"
    assert len(first["timestamp"]) == 19  # "2022-11-14 07:54:45"
    assert [r["email_address"] for r in view["results"]] == [
        "seed@example.com",
        "blocked-domain.example",
        "temp@example.com",
    ]
    oldest_first = data_of(call(tenant, "/v3/suppression/view", {"sort": "asc"}))
    assert oldest_first["results"][0]["email_address"] == "temp@example.com"
    # An address is covered by its domain's entry too.
    covered = data_of(
        call(tenant, "/v3/suppression/view", {"email_address": "who@blocked-domain.example"})
    )
    assert [r["email_address"] for r in covered["results"]] == ["blocked-domain.example"]
    wild = data_of(call(tenant, "/v3/suppression/view", {"wildcard": "DOMAIN"}))
    assert [r["email_address"] for r in wild["results"]] == ["blocked-domain.example"]
    assert (
        data_of(call(tenant, "/v3/suppression/view", {"suppression_type": "spam"}))["results"] == []
    )
    assert (
        data_of(call(tenant, "/v3/suppression/view", {"suppression_types": ["compliance"]}))[
            "total_results"
        ]
        == 0
    )

    native = tenant.client.get("/api/v1/suppressions").json()["data"]
    assert {n["value"] for n in native} == {r["email_address"] for r in view["results"]}

    kept = data_of(
        call(
            tenant,
            "/v3/suppression/remove",
            {"email_address": "temp@example.com", "reasons": ["spam"]},
        )
    )
    assert kept == {
        "suppressions": [{"email_address": "temp@example.com", "reason": "spam", "removed": False}]
    }
    removed = data_of(
        call(
            tenant,
            "/v3/suppression/remove",
            {"email_address": "TEMP@example.com", "reasons": ["manual", "spam"]},
        )
    )
    assert removed == {
        "suppressions": [
            {"email_address": "temp@example.com", "reason": "manual", "removed": True},
            {"email_address": "temp@example.com", "reason": "spam", "removed": False},
        ]
    }
    plain = data_of(call(tenant, "/v3/suppression/remove", {"domain": "blocked-domain.example"}))
    assert plain["suppressions"] == [
        {"email_address": "blocked-domain.example", "reason": "manual", "removed": True}
    ]
    error_of(
        call(tenant, "/v3/suppression/remove", {"email": "temp@example.com"}), 404, "NOT_FOUND"
    )
    assert data_of(call(tenant, "/v3/suppression/view"))["total_results"] == 1


def test_bad_input_in_smtp2go_shape(tenant: Tenant) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "email_address"),
        ({"email_address": "a@@b"}, "email_address"),
        ({"email_address": "10.0.0.1"}, "email_address"),
        ({"domain": "someone@example.com"}, "domain"),
        ({"email": "example.com"}, "email"),
        ({"email_address": "a@example.com", "domain": "example.com"}, "email_address"),
        ({"email_address": "ok@example.com", "block_description": "a\nb"}, "block_description"),
        ({"email_address": "ok@example.com", "reason": "x"}, "reason"),
        ({"email_address": ["ok@example.com"]}, "email_address"),
    ]
    for body, field in cases:
        data = error_of(call(tenant, "/v3/suppression/add", body), 400, "NON_VALIDATING_IN_PAYLOAD")
        assert data["field_validation_errors"]["fieldname"] == field, data
    error_of(
        call(tenant, "/v3/suppression/view", {"suppression_type": "bored"}),
        400,
        "NON_VALIDATING_IN_PAYLOAD",
    )
    error_of(call(tenant, "/v3/suppression/view", {"sort": "up"}), 400, "NON_VALIDATING_IN_PAYLOAD")
    error_of(
        call(tenant, "/v3/suppression/view", {"continue_token": "xyz"}),
        400,
        "NON_VALIDATING_IN_PAYLOAD",
    )
    error_of(
        call(tenant, "/v3/suppression/remove", {"email_address": "a@b.example", "reasons": ["x"]}),
        400,
        "NON_VALIDATING_IN_PAYLOAD",
    )
    assert data_of(call(tenant, "/v3/suppression/view"))["results"] == []

    reader = tenant.key_with("suppressions:read")
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        refused = client.post(
            "/v3/suppression/add",
            json={"email_address": "x@example.com"},
            headers={"X-Smtp2go-Api-Key": reader},
        )
    error_of(refused, 403, "ENDPOINT_PERMISSION_DENIED")
