"""SMTP2GO /v3/smtp/... and /v3/users/smtp/...: add (generated password once), edit, patch,
remove, view, in SMTP2GO's bodies and errors; the period syntax; options Mailgate lacks."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import httpx
import pytest

from conftest import Tenant, new_tenant
from mailgate.api.smtp2go.mapping_smtp_users import format_period, parse_period
from mailgate.services import smtp_users as service

PREFIXES = ["/v3/smtp", "/v3/users/smtp"]
PASSWORD = "a-long-enough-password"
RESULT_FIELDS = {
    "username",
    "email_password",
    "sending_allowed",
    "status",
    "description",
    "custom_ratelimit",
    "custom_ratelimit_value",
    "custom_ratelimit_period",
    "allowed_senders",
    "feedback_enabled",
    "feedback_domain",
    "feedback_html",
    "feedback_text",
    "archive_enabled",
    "open_tracking_enabled",
    "click_tracking_enabled",
    "audit_email",
    "bounce_notifications",
}


def name() -> str:
    return "s2g-" + secrets.token_hex(6)


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


def post(tenant: Tenant, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """As the official Python client sends it: the key in the body, no Content-Type."""
    payload = {"api_key": tenant.key, **(body or {})}
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        return client.post(path, content=json.dumps(payload))


def patch(tenant: Tenant, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"X-Smtp2go-Api-Key": tenant.key, "Content-Type": "application/json"}
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        return client.patch(path, content=json.dumps(body), headers=headers)


def logs_in(tenant: Tenant, username: str, password: str) -> bool:
    async def work(session: Any) -> bool:
        found = await service.authenticate_smtp_user(
            session=session, username=username, password=password
        )
        return found is not None and found.account_id == tenant.account_id

    return bool(tenant.server.run(work))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_add_generates_a_password_once_and_view_never_shows_it(tenant: Tenant, prefix: str) -> None:
    username = name()

    data = data_of(post(tenant, f"{prefix}/add", {"username": username, "description": "CRM"}))

    [result] = data["results"]
    assert set(result) == RESULT_FIELDS
    assert result["username"] == username
    assert result["description"] == "CRM"
    assert result["sending_allowed"] is True and result["status"] == "allowed"
    assert result["custom_ratelimit"] is False
    assert result["custom_ratelimit_value"] is None
    assert result["custom_ratelimit_period"] == "0:00:00"
    generated = result["email_password"]
    assert isinstance(generated, str) and len(generated) >= 32
    assert logs_in(tenant, username, generated)

    for prefix_seen in PREFIXES:
        view = post(tenant, f"{prefix_seen}/view", {"username": username})
        viewed = data_of(view)
        assert viewed["results"][0]["email_password"] is None
        assert viewed["default_ratelimit_value"] == 0
        assert viewed["default_ratelimit_period"] == "unlimited"
        assert generated not in view.text
    everything = post(tenant, f"{prefix}/view")
    assert [r["username"] for r in data_of(everything)["results"]] == [username]
    assert generated not in everything.text


def test_add_with_a_password_rate_limit_and_senders(tenant: Tenant) -> None:
    username = name()
    response = post(
        tenant,
        "/v3/smtp/add",
        {
            "username": username,
            "email_password": PASSWORD,
            "custom_ratelimit": True,
            "custom_ratelimit_value": 500,
            "custom_ratelimit_period": "1 hour",
            "allowed_senders": ["app@example.com", "example.org"],
        },
    )

    [result] = data_of(response)["results"]
    assert result["email_password"] is None
    assert PASSWORD not in response.text
    assert result["custom_ratelimit"] is True
    assert result["custom_ratelimit_value"] == 500
    assert result["custom_ratelimit_period"] == "1 hour"
    assert result["allowed_senders"] == ["app@example.com", "example.org"]
    assert logs_in(tenant, username, PASSWORD)
    native = tenant.client.get("/api/v1/smtp-users").json()["data"]
    assert native[0]["username"] == username
    assert native[0]["rate_limit"] == {"max_messages": 500, "period_seconds": 3600}


def test_add_as_the_python_client_sends_it_with_every_key(tenant: Tenant) -> None:
    body = {
        "username": name(),
        "email_password": None,
        "description": None,
        "custom_ratelimit": False,
        "custom_ratelimit_value": None,
        "custom_ratelimit_period": None,
        "ip_pool": None,
        "feedback_enabled": False,
        "feedback_domain": "default",
        "feedback_html": "",
        "feedback_text": "",
        "open_tracking_enabled": False,
        "click_tracking_enabled": False,
        "archive_enabled": False,
        "audit_email": None,
        "bounce_notifications": "from",
        "status": "allowed",
        "subaccount_id": None,
    }

    [result] = data_of(post(tenant, "/v3/users/smtp/add", body))["results"]

    assert result["email_password"] and result["status"] == "allowed"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_patch_changes_only_what_is_sent(tenant: Tenant, prefix: str) -> None:
    username = name()
    post(
        tenant,
        f"{prefix}/add",
        {
            "username": username,
            "email_password": PASSWORD,
            "description": "kept",
            "custom_ratelimit": True,
            "custom_ratelimit_value": 10,
            "custom_ratelimit_period": "1 day",
            "allowed_senders": ["example.com"],
        },
    )

    response = patch(tenant, f"{prefix}/patch", {"username": username, "status": "blocked"})
    [result] = data_of(response)  # a patch answers the list itself
    assert result["status"] == "blocked" and result["sending_allowed"] is False
    assert result["description"] == "kept"
    assert (result["custom_ratelimit_value"], result["custom_ratelimit_period"]) == (10, "1 day")
    assert result["allowed_senders"] == ["example.com"]
    assert not logs_in(tenant, username, PASSWORD)

    value_only = patch(
        tenant, f"{prefix}/edit", {"username": username, "custom_ratelimit_value": 20}
    )
    [result] = data_of(value_only)
    assert (result["custom_ratelimit_value"], result["custom_ratelimit_period"]) == (20, "1 day")

    off = data_of(
        patch(tenant, f"{prefix}/patch", {"username": username, "custom_ratelimit": False})
    )
    assert off[0]["custom_ratelimit"] is False and off[0]["custom_ratelimit_value"] is None
    ignored = data_of(
        patch(tenant, f"{prefix}/patch", {"username": username, "custom_ratelimit_value": 5})
    )
    assert ignored[0]["custom_ratelimit"] is False  # SMTP2GO: stored only with custom_ratelimit

    allowed = data_of(
        patch(
            tenant,
            f"{prefix}/patch",
            {"username": username, "status": "allowed", "email_password": "a-new-long-password"},
        )
    )
    assert allowed[0]["email_password"] is None
    assert logs_in(tenant, username, "a-new-long-password")
    assert not logs_in(tenant, username, PASSWORD)


def test_edit_replaces_the_description_and_rate_limit(tenant: Tenant) -> None:
    username = name()
    post(
        tenant,
        "/v3/smtp/add",
        {
            "username": username,
            "email_password": PASSWORD,
            "description": "old",
            "custom_ratelimit": True,
            "custom_ratelimit_value": 10,
            "custom_ratelimit_period": "0:30:00",
            "allowed_senders": ["example.com"],
            "status": "blocked",
        },
    )

    [result] = data_of(post(tenant, "/v3/smtp/edit", {"username": username}))["results"]

    assert result["description"] == ""
    assert result["custom_ratelimit"] is False
    assert result["status"] == "blocked"  # set only when sent
    assert result["allowed_senders"] == ["example.com"]  # Mailgate's own: kept unless sent
    assert logs_in(tenant, username, PASSWORD) is False  # blocked; password unchanged
    [result] = data_of(
        post(
            tenant,
            "/v3/users/smtp/edit",
            {
                "username": username,
                "description": "new",
                "status": "allowed",
                "custom_ratelimit": True,
                "custom_ratelimit_value": 3,
                "custom_ratelimit_period": "2 weeks",
                "allowed_senders": [],
            },
        )
    )["results"]
    assert result["description"] == "new" and result["status"] == "allowed"
    assert (result["custom_ratelimit_value"], result["custom_ratelimit_period"]) == (3, "14 days")
    assert result["allowed_senders"] == []
    assert logs_in(tenant, username, PASSWORD)


def test_an_empty_password_generates_a_new_one(tenant: Tenant) -> None:
    username = name()
    post(tenant, "/v3/smtp/add", {"username": username, "email_password": PASSWORD})

    [result] = data_of(post(tenant, "/v3/smtp/edit", {"username": username, "email_password": ""}))[
        "results"
    ]

    assert result["email_password"] and result["email_password"] != PASSWORD
    assert logs_in(tenant, username, result["email_password"])
    assert not logs_in(tenant, username, PASSWORD)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_remove(tenant: Tenant, prefix: str) -> None:
    username = name()
    post(tenant, f"{prefix}/add", {"username": username, "email_password": PASSWORD})

    [removed] = data_of(post(tenant, f"{prefix}/remove", {"username": username}))["results"]

    assert removed["username"] == username and removed["email_password"] is None
    assert not logs_in(tenant, username, PASSWORD)
    assert data_of(post(tenant, f"{prefix}/view", {"username": username}))["results"] == []
    error_of(post(tenant, f"{prefix}/remove", {"username": username}), 404, "NOT_FOUND")


def test_unknown_users_are_404_and_another_accounts_are_unknown(
    tenant: Tenant, live_server: Any
) -> None:
    username = name()
    post(tenant, "/v3/smtp/add", {"username": username, "email_password": PASSWORD})

    with new_tenant(live_server) as other:
        for path, send in [
            ("/v3/smtp/edit", post),
            ("/v3/smtp/remove", post),
            ("/v3/users/smtp/patch", patch),
        ]:
            error_of(send(other, path, {"username": username}), 404, "NOT_FOUND")
        assert data_of(post(other, "/v3/smtp/view", {"username": username}))["results"] == []
        assert data_of(post(other, "/v3/smtp/view"))["results"] == []
        taken = post(other, "/v3/smtp/add", {"username": username, "email_password": PASSWORD})
        assert username in error_of(taken, 402, "API_EXCEPTION")["error"]
    assert logs_in(tenant, username, PASSWORD)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": ""}, "username"),
        ({"username": "abcd"}, "username"),
        ({"username": "x" * 256}, "username"),
        ({"username": "crlf\r\nname"}, "username"),
        ({"username": 42}, "username"),
        ({"email_password": "short"}, "email_password"),
        ({"email_password": "line\nbreak-in-a-password"}, "email_password"),
        ({"description": "a\r\nb"}, "description"),
        ({"description": "x" * 256}, "description"),
        ({"custom_ratelimit": "yes"}, "custom_ratelimit"),
        ({"custom_ratelimit": True}, "custom_ratelimit_value"),
        ({"custom_ratelimit": True, "custom_ratelimit_value": 5}, "custom_ratelimit_period"),
        (
            {
                "custom_ratelimit": True,
                "custom_ratelimit_value": 0,
                "custom_ratelimit_period": "1 day",
            },
            "custom_ratelimit_value",
        ),
        (
            {
                "custom_ratelimit": True,
                "custom_ratelimit_value": 5,
                "custom_ratelimit_period": "soon",
            },
            "custom_ratelimit_period",
        ),
        (
            {
                "custom_ratelimit": True,
                "custom_ratelimit_value": 5,
                "custom_ratelimit_period": "0:00:00",
            },
            "custom_ratelimit_period",
        ),
        ({"custom_ratelimit_value": "5"}, "custom_ratelimit_value"),
        ({"status": "paused"}, "status"),
        ({"status": "sandbox"}, "status"),
        ({"ip_pool": 1234}, "ip_pool"),
        ({"open_tracking_enabled": True}, "open_tracking_enabled"),
        ({"archive_enabled": True}, "archive_enabled"),
        ({"audit_email": "audit@example.com"}, "audit_email"),
        ({"bounce_notifications": "drop"}, "bounce_notifications"),
        ({"subaccount_id": "sub-1"}, "subaccount_id"),
        ({"allowed_senders": ["not an address"]}, "allowed_senders.0"),
        ({"smtp_password": "secret-value-123"}, "smtp_password"),
    ],
)
def test_bad_add_bodies_are_400_naming_the_field(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    if field != "username" and "username" not in body:
        body = {"username": name(), **body}

    response = post(tenant, "/v3/smtp/add", body)

    assert field in invalid_fields(response), response.text
    assert "secret-value-123" not in response.text
    assert "line\nbreak-in-a-password" not in response.text
    assert data_of(post(tenant, "/v3/smtp/view"))["results"] == []


def test_permissions(tenant: Tenant) -> None:
    username = name()
    post(tenant, "/v3/smtp/add", {"username": username, "email_password": PASSWORD})
    reader = tenant.key_with("smtp_users:read")
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:

        def call(key: str, path: str, body: dict[str, Any]) -> httpx.Response:
            return client.post(path, content=json.dumps({"api_key": key, **body}))

        assert call(reader, "/v3/smtp/view", {}).status_code == 200
        for path in ("/v3/smtp/add", "/v3/users/smtp/edit", "/v3/smtp/remove"):
            error_of(call(reader, path, {"username": username}), 403, "ENDPOINT_PERMISSION_DENIED")
        denied = client.patch(
            "/v3/smtp/patch",
            content=json.dumps({"username": username}),
            headers={"X-Smtp2go-Api-Key": reader},
        )
        error_of(denied, 403, "ENDPOINT_PERMISSION_DENIED")
        error_of(client.post("/v3/smtp/view", json={}), 401, "API_KEY_INVALID")
        listed = data_of(call(reader, "/v3/api_keys/permissions", {}))
        assert listed == ["/api_keys/permissions", "/smtp/view", "/users/smtp/view"]
    assert logs_in(tenant, username, PASSWORD)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1 hour", 3600),
        ("2 hours", 7200),
        ("1 day", 86400),
        ("2 days", 172800),
        ("1 week", 604800),
        ("3 months", 90 * 86400),
        ("0:30:00", 1800),
        ("4 months 5:00:00", 120 * 86400 + 5 * 3600),
        ("2 days, 3:00:00", 2 * 86400 + 3 * 3600),
        ("1 Day", 86400),
        ("90 minutes", 5400),
        ("  12:00:00 ", 43200),
    ],
)
def test_parse_period(text: str, seconds: int) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1", "hour", "1 year", "0:60:00", "-1 day", "1:2"])
def test_parse_period_refuses_what_is_not_a_period(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600, "1 hour"),
        (7200, "2 hours"),
        (86400, "1 day"),
        (1800, "0:30:00"),
        (1, "0:00:01"),
        (90000, "1 day 1:00:00"),
        (30 * 86400, "30 days"),
        (183600, "2 days 3:00:00"),
    ],
)
def test_format_period_reads_back(seconds: int, text: str) -> None:
    assert format_period(seconds) == text
    assert parse_period(text) == seconds
