"""SMTP2GO /v3/template/add|edit|delete|search|view in SMTP2GO's shapes (its ``id``, and the
seed's ``template_id``), errors in its envelope, permissions, and /v3/email/send with
``template_id`` + ``template_data`` as the official Python client sends it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from conftest import Tenant, new_tenant
from template_support import parts, stored_mime

ADD = "/v3/template/add"
EDIT = "/v3/template/edit"
DELETE = "/v3/template/delete"
SEARCH = "/v3/template/search"
VIEW = "/v3/template/view"
SEND = "/v3/email/send"
# The seed document's example, as printed.
SEED_ADD = {
    "template_name": "welcome-email",
    "html_body": "<h1>Welcome {{ name }}</h1>",
    "text_body": "Welcome {{ name }}",
}


def post(
    tenant: Tenant, path: str, body: dict[str, Any] | None = None, key: str | None = None
) -> httpx.Response:
    """As the official Python client posts: the key in the JSON body, no Content-Type."""
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        request = client.build_request(
            "POST", path, content=json.dumps({"api_key": key or tenant.key, **(body or {})})
        )
        assert "content-type" not in request.headers
        return client.send(request)


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


def invalid_fields(response: httpx.Response) -> set[str]:
    data = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
    return {e["fieldname"] for e in data["field_validation_errors"]["errors"]}


def add(tenant: Tenant, **body: Any) -> dict[str, Any]:
    data: dict[str, Any] = data_of(post(tenant, ADD, {**SEED_ADD, **body}))
    return data


def test_the_seed_examples_add_edit_view_search_delete(tenant: Tenant) -> None:
    made = add(tenant)
    assert made["id"].startswith("tmpl_")
    assert made == {
        "id": made["id"],
        "template_name": "welcome-email",
        "subject": "",
        "html_body": "<h1>Welcome {{ name }}</h1>",
        "text_body": "Welcome {{ name }}",
        "template_variables": {},
        "tags": [],
        "last_updated": made["last_updated"],
    }
    assert len(made["last_updated"]) == len("2024-01-01 12:00:00")

    edited = data_of(
        post(
            tenant,
            EDIT,
            {
                "template_id": made["id"],
                "template_name": "updated-name",
                "html_body": "<h1>Updated content</h1>",
            },
        )
    )
    assert edited["template_name"] == "updated-name"
    assert edited["html_body"] == "<h1>Updated content</h1>"
    assert edited["text_body"] == "Welcome {{ name }}"  # not given: unchanged

    viewed = data_of(post(tenant, VIEW, {"template_id": made["id"]}))
    assert viewed["name"] == "updated-name" and "template_name" not in viewed
    assert data_of(post(tenant, VIEW, {"id": made["id"]})) == viewed

    found = data_of(post(tenant, SEARCH, {"query": "updated"}))
    assert found["total_count"] == 1 and found["continue_token"] is None
    assert found["templates"] == [
        {
            "id": made["id"],
            "name": "updated-name",
            "subject": "",
            "tags": [],
            "last_updated": viewed["last_updated"],
        }
    ]
    assert data_of(post(tenant, SEARCH, {"query": "nothing like it"}))["templates"] == []

    gone = data_of(post(tenant, DELETE, {"template_id": made["id"]}))
    assert gone == f"Successfully deleted template '{made['id']}'"
    error_of(post(tenant, VIEW, {"id": made["id"]}), 404, "NOT_FOUND")
    error_of(post(tenant, DELETE, {"id": made["id"]}), 404, "NOT_FOUND")


def test_smtp2go_reference_fields_chosen_ids_tags_and_search(tenant: Tenant) -> None:
    made = add(
        tenant,
        template_name="Order receipt",
        id="receipt",
        subject="Order receipt for {{ product_name }}",
        template_variables={"product_name": "strawberries"},
        tags=["one", "two"],
    )
    assert made["id"] == "receipt" and made["template_variables"] == {
        "product_name": "strawberries"
    }
    add(tenant, template_name="Shipping", id="shipping", subject="Shipped", tags=["two"])
    add(tenant, template_name="Other", subject="Other")
    error_of(
        post(tenant, ADD, {**SEED_ADD, "template_name": "x", "id": "receipt"}), 402, "API_EXCEPTION"
    )
    assert invalid_fields(post(tenant, ADD, {**SEED_ADD, "id": "no"})) == {"id"}

    def names(body: dict[str, Any]) -> list[str]:
        return [t["name"] for t in data_of(post(tenant, SEARCH, body))["templates"]]

    assert names({}) == ["Order receipt", "Shipping", "Other"]
    assert names({"sort_direction": "desc"}) == ["Other", "Shipping", "Order receipt"]
    assert names({"search_terms": ["order receipt"]}) == ["Order receipt"]  # exact, any case
    assert names({"search_terms": ["order"]}) == []
    assert names({"search_terms": ["order"], "fuzzy_search": True}) == ["Order receipt"]
    assert names({"search_terms": ["shipping", "receipt"]}) == ["Order receipt", "Shipping"]
    assert names({"tags": ["two"]}) == ["Order receipt", "Shipping"]
    assert names({"tags": ["tw"]}) == []
    page = data_of(post(tenant, SEARCH, {"page_size": 2}))
    assert page["total_count"] == 3 and len(page["templates"]) == 2
    rest = data_of(post(tenant, SEARCH, {"page_size": 2, "continue_token": page["continue_token"]}))
    assert [t["name"] for t in rest["templates"]] == ["Other"] and rest["continue_token"] is None

    moved = data_of(post(tenant, EDIT, {"id": "receipt", "new_id": "receipt-2", "tags": ["x"]}))
    assert moved["id"] == "receipt-2" and moved["tags"] == ["x"]
    error_of(post(tenant, VIEW, {"id": "receipt"}), 404, "NOT_FOUND")
    error_of(post(tenant, EDIT, {"id": "receipt-2", "new_id": "shipping"}), 402, "API_EXCEPTION")


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        (ADD, {"html_body": "x"}, {"template_name"}),
        (ADD, {**SEED_ADD, "html_body": "<p>\n{% if %}"}, {"html_body"}),
        (ADD, {**SEED_ADD, "template_name": "a\nb"}, {"template_name"}),
        (ADD, {**SEED_ADD, "template_variables": "nope"}, {"template_variables"}),
        (ADD, {**SEED_ADD, "unknown_field": 1}, {"unknown_field"}),
        (VIEW, {}, {"id"}),
        (DELETE, {}, {"id"}),
        (EDIT, {"template_name": "x"}, {"id"}),
        (SEARCH, {"sort_direction": "sideways"}, {"sort_direction"}),
        (SEARCH, {"continue_token": "garbage"}, {"continue_token"}),
    ],
)
def test_bad_requests_name_the_field(
    tenant: Tenant, path: str, body: dict[str, Any], fields: set[str]
) -> None:
    assert invalid_fields(post(tenant, path, body)) == fields
    assert data_of(post(tenant, SEARCH))["total_count"] == 0  # nothing half-written


def test_a_syntax_error_names_the_line_in_the_error(tenant: Tenant) -> None:
    response = post(tenant, ADD, {**SEED_ADD, "text_body": "a\nb\n{{ x | }}"})
    data = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
    assert data["field_validation_errors"]["fieldname"] == "text_body"
    assert "line 3" in data["field_validation_errors"]["message"]


def test_permissions_and_other_accounts(tenant: Tenant, live_server: Any) -> None:
    made = add(tenant)
    reader = tenant.key_with("templates:read")
    assert data_of(post(tenant, VIEW, {"id": made["id"]}, key=reader))["id"] == made["id"]
    error_of(post(tenant, ADD, SEED_ADD, key=reader), 403, "ENDPOINT_PERMISSION_DENIED")
    allowed = data_of(post(tenant, "/v3/api_keys/permissions", key=reader))
    assert "/template/view" in allowed and "/template/add" not in allowed
    with new_tenant(live_server) as other:
        error_of(post(other, VIEW, {"id": made["id"]}), 404, "NOT_FOUND")
        assert data_of(post(other, SEARCH))["templates"] == []


def python_client_send(tenant: Tenant, **given: Any) -> httpx.Response:
    """Every key the official client sends, the unused ones null."""
    body = {
        "sender": "noreply@example.com",
        "to": ["Ann <ann@example.com>"],
        "subject": None,
        "text_body": None,
        "html_body": None,
        "template_id": None,
        "template_data": None,
        "custom_headers": None,
    }
    return post(tenant, SEND, {**body, **given})


def test_send_with_a_template(tenant: Tenant) -> None:
    made = add(tenant, subject="Welcome {{ name }}", id="welcome")
    sent = data_of(
        python_client_send(tenant, template_id="welcome", template_data={"name": "Ann & Bob"})
    )
    assert sent["succeeded"] == 1 and sent["failed"] == 0
    subject, html, text = parts(stored_mime(tenant.server, sent["email_id"]))
    assert subject == "Welcome Ann & Bob"
    assert html is not None and "<h1>Welcome Ann &amp; Bob</h1>" in html
    assert text is not None and text.strip() == "Welcome Ann & Bob"

    # template_data as JSON text (some clients), and the request's own subject wins
    again = data_of(
        python_client_send(
            tenant, template_id=made["id"], template_data='{"name": "Cy"}', subject="Mine"
        )
    )
    subject, _, text = parts(stored_mime(tenant.server, again["email_id"]))
    assert subject == "Mine" and text is not None and text.strip() == "Welcome Cy"


def test_send_refusals(tenant: Tenant) -> None:
    add(tenant, id="welcome", text_body="{{ x.__class__ }}")
    assert invalid_fields(python_client_send(tenant, template_id="missing-one")) == {"template_id"}
    both = python_client_send(tenant, template_id="missing-one", sender=None)
    assert invalid_fields(both) == {"template_id", "sender"}
    hostile = python_client_send(tenant, template_id="welcome", template_data={"x": 1})
    assert invalid_fields(hostile) == {"template_data"}
    not_json = python_client_send(tenant, template_id="welcome", template_data="[1, 2")
    assert invalid_fields(not_json) == {"template_data"}
    assert invalid_fields(python_client_send(tenant)) == {"text_body"}
    listed = data_of(post(tenant, "/v3/email/search"))
    assert listed["emails"] == []  # nothing half-written
