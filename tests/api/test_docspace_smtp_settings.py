"""DocSpace ``/api/2.0/smtpsettings/smtp``: read, save, reset; errors in DocSpace's shape.

The account's one DocSpace setting is its default provider, visible on the native surface.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Tenant

URL = "/api/2.0/smtpsettings/smtp"
PASSWORD = "your-password"

# The document's headers and body, as its Node.js and Python examples send them.
DOC_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
DOC_BODY: dict[str, Any] = {
    "host": "mail.example.com",
    "port": 587,
    "senderAddress": "notify@example.com",
    "senderDisplayName": "DocSpace Notifications",
    "credentialsUserName": "notify@example.com",
    "credentialsUserPassword": PASSWORD,
    "enableSSL": True,
    "enableAuth": True,
    "useNtlm": False,
    "isDefaultSettings": False,
}
INSTALLATION_DEFAULTS = {
    "host": "smtp.installation.test",
    "port": 25,
    "senderAddress": "portal@installation.test",
    "senderDisplayName": "Mailgate",
    "credentialsUserName": "",
    "credentialsUserPassword": "",
    "enableSSL": False,
    "enableAuth": False,
    "useNtlm": False,
    "isDefaultSettings": True,
}


def settings_of(response: httpx.Response, method: str) -> dict[str, Any]:
    """The payload of a DocSpace answer, after checking the wrapper around it."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 1
    assert body["status"] == 0
    assert body["statusCode"] == 200
    assert body["links"] == [{"href": str(response.request.url), "action": method}]
    payload: dict[str, Any] = body["response"]
    assert payload["credentialsUserPassword"] == ""
    assert PASSWORD not in response.text
    return payload


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == 1
    assert body["statusCode"] == status
    assert body["links"] == [{"href": str(response.request.url), "action": response.request.method}]
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert PASSWORD not in response.text
    error: dict[str, Any] = body["error"]
    return error


def native_providers(tenant: Tenant) -> list[dict[str, Any]]:
    response = tenant.client.get("/api/v1/providers")
    assert response.status_code == 200, response.text
    providers: list[dict[str, Any]] = response.json()["data"]
    return providers


def native_provider(tenant: Tenant, provider_id: str) -> dict[str, Any]:
    response = tenant.client.get(f"/api/v1/providers/{provider_id}")
    assert response.status_code == 200, response.text
    provider: dict[str, Any] = response.json()["data"]
    return provider


def the_default(tenant: Tenant) -> dict[str, Any]:
    defaults = [p for p in native_providers(tenant) if p["is_default"]]
    assert len(defaults) == 1, defaults
    return native_provider(tenant, defaults[0]["id"])


def native_create(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Native relay",
        "smtp_host": "relay.example.net",
        "smtp_port": 465,
        "smtp_protocol": "ssl",
        "smtp_username": "relay-user",
        "smtp_password": "relay-secret",
        "from_email": "relay@example.net",
        "from_name": "Relay",
        **fields,
    }
    response = tenant.client.post("/api/v1/providers", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["data"]
    return created


def save(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    return settings_of(tenant.client.post(URL, json=body, headers=DOC_HEADERS), "POST")


# --- the document's four steps ----------------------------------------------------------------


def test_get_without_settings_returns_the_installation_defaults(tenant: Tenant) -> None:
    response = tenant.client.get(URL, headers=DOC_HEADERS)

    assert settings_of(response, "GET") == INSTALLATION_DEFAULTS
    assert native_providers(tenant) == []


def test_save_the_documents_example_creates_the_default_provider(tenant: Tenant) -> None:
    response = tenant.client.post(URL, json=DOC_BODY, headers=DOC_HEADERS)

    expected = {**DOC_BODY, "credentialsUserPassword": ""}
    assert settings_of(response, "POST") == expected
    provider = the_default(tenant)
    assert provider["name"] == "DocSpace SMTP"
    assert provider["smtp_host"] == "mail.example.com"
    assert provider["smtp_port"] == 587
    assert provider["smtp_protocol"] == "starttls"  # enableSSL on a port other than 465
    assert provider["smtp_username"] == "notify@example.com"
    assert provider["has_smtp_password"] is True
    assert provider["smtp_auth_method"] == "auto"
    assert provider["from_email"] == "notify@example.com"
    assert provider["from_name"] == "DocSpace Notifications"
    assert settings_of(tenant.client.get(URL, headers=DOC_HEADERS), "GET") == expected


def test_reset_returns_the_defaults_and_keeps_the_provider_elsewhere(tenant: Tenant) -> None:
    save(tenant, DOC_BODY)
    provider_id = the_default(tenant)["id"]

    response = tenant.client.delete(URL, headers=DOC_HEADERS)

    assert settings_of(response, "DELETE") == INSTALLATION_DEFAULTS
    assert settings_of(tenant.client.get(URL), "GET") == INSTALLATION_DEFAULTS
    kept = native_provider(tenant, provider_id)
    assert kept["is_default"] is False
    assert kept["smtp_host"] == "mail.example.com"
    assert kept["has_smtp_password"] is True


def test_reset_without_settings_is_harmless(tenant: Tenant) -> None:
    assert settings_of(tenant.client.delete(URL), "DELETE") == INSTALLATION_DEFAULTS
    assert native_providers(tenant) == []


def test_save_after_reset_creates_a_new_default(tenant: Tenant) -> None:
    save(tenant, DOC_BODY)
    tenant.client.delete(URL)

    save(tenant, {**DOC_BODY, "host": "second.example.com"})

    providers = native_providers(tenant)
    assert len(providers) == 2
    assert [p["smtp_host"] for p in providers if p["is_default"]] == ["second.example.com"]


# --- how the fields map -------------------------------------------------------------------------


def test_minimal_save_defaults_port_25_no_ssl_no_auth(tenant: Tenant) -> None:
    saved = save(tenant, {"host": "smtp.example.org", "senderAddress": "me@example.org"})

    assert saved == {
        "host": "smtp.example.org",
        "port": 25,
        "senderAddress": "me@example.org",
        "senderDisplayName": "",
        "credentialsUserName": "",
        "credentialsUserPassword": "",
        "enableSSL": False,
        "enableAuth": False,
        "useNtlm": False,
        "isDefaultSettings": False,
    }
    provider = the_default(tenant)
    assert provider["smtp_protocol"] == "none"
    assert provider["smtp_username"] is None
    assert provider["has_smtp_password"] is False


@pytest.mark.parametrize(
    ("port", "enable_ssl", "protocol"),
    [(465, True, "tls"), (587, True, "starttls"), (25, True, "starttls"), (465, False, "none")],
)
def test_enable_ssl_picks_implicit_tls_on_465_else_starttls(
    tenant: Tenant, port: int, enable_ssl: bool, protocol: str
) -> None:
    saved = save(tenant, {**DOC_BODY, "port": port, "enableSSL": enable_ssl})

    assert saved["enableSSL"] is enable_ssl
    assert the_default(tenant)["smtp_protocol"] == protocol


def test_use_ntlm_sets_the_auth_method(tenant: Tenant) -> None:
    assert save(tenant, {**DOC_BODY, "useNtlm": True})["useNtlm"] is True
    assert the_default(tenant)["smtp_auth_method"] == "ntlm"

    assert save(tenant, {**DOC_BODY, "useNtlm": False})["useNtlm"] is False
    assert the_default(tenant)["smtp_auth_method"] == "auto"


def test_is_default_settings_in_the_body_is_ignored(tenant: Tenant) -> None:
    saved = save(tenant, {**DOC_BODY, "isDefaultSettings": True})

    assert saved["isDefaultSettings"] is False
    assert settings_of(tenant.client.get(URL), "GET")["isDefaultSettings"] is False


def test_enable_auth_false_clears_the_credentials(tenant: Tenant) -> None:
    save(tenant, DOC_BODY)

    saved = save(
        tenant,
        {**DOC_BODY, "enableAuth": False, "credentialsUserName": "ignored@example.com"},
    )

    assert saved["enableAuth"] is False
    assert saved["credentialsUserName"] == ""
    provider = the_default(tenant)
    assert provider["smtp_username"] is None
    assert provider["has_smtp_password"] is False


def test_enable_auth_omitted_follows_the_user_name(tenant: Tenant) -> None:
    body = {k: v for k, v in DOC_BODY.items() if k != "enableAuth"}
    assert save(tenant, body)["enableAuth"] is True
    assert the_default(tenant)["has_smtp_password"] is True

    body = {"host": "smtp.example.org", "senderAddress": "me@example.org"}
    assert save(tenant, body)["enableAuth"] is False


def test_the_emptied_password_round_trips_and_keeps_the_stored_one(tenant: Tenant) -> None:
    save(tenant, DOC_BODY)
    shown = settings_of(tenant.client.get(URL), "GET")
    assert shown["credentialsUserPassword"] == ""

    saved = save(tenant, {**shown, "senderDisplayName": "Renamed"})

    assert saved["senderDisplayName"] == "Renamed"
    provider = the_default(tenant)
    assert provider["has_smtp_password"] is True
    assert provider["smtp_username"] == "notify@example.com"


def test_a_new_password_replaces_the_stored_one(tenant: Tenant) -> None:
    save(tenant, DOC_BODY)
    provider_id = the_default(tenant)["id"]

    save(tenant, {**DOC_BODY, "credentialsUserPassword": "another-password"})

    provider = the_default(tenant)
    assert provider["id"] == provider_id
    assert provider["has_smtp_password"] is True


# --- one setting, every surface -------------------------------------------------------------------


def test_a_native_default_provider_is_the_docspace_setting(tenant: Tenant) -> None:
    native_create(tenant, name="Not default", smtp_host="other.example.net")
    native_create(tenant, is_default=True, smtp_auth_method="ntlm")

    shown = settings_of(tenant.client.get(URL), "GET")

    assert shown == {
        "host": "relay.example.net",
        "port": 465,
        "senderAddress": "relay@example.net",
        "senderDisplayName": "Relay",
        "credentialsUserName": "relay-user",
        "credentialsUserPassword": "",
        "enableSSL": True,
        "enableAuth": True,
        "useNtlm": True,
        "isDefaultSettings": False,
    }
    assert "relay-secret" not in tenant.client.get(URL).text


def test_a_native_provider_that_is_not_default_is_not_the_setting(tenant: Tenant) -> None:
    native_create(tenant)

    assert settings_of(tenant.client.get(URL), "GET") == INSTALLATION_DEFAULTS


def test_saving_updates_the_native_default_in_place(tenant: Tenant) -> None:
    created = native_create(tenant, is_default=True, quotas={"per_day": 500})
    shown = settings_of(tenant.client.get(URL), "GET")

    save(tenant, {**shown, "host": "new-host.example.net", "port": 2525, "enableSSL": False})

    provider = native_provider(tenant, created["id"])
    assert provider["is_default"] is True
    assert provider["name"] == "Native relay"  # untouched by DocSpace
    assert provider["quotas"]["per_day"] == {"min": 500, "max": 500}
    assert provider["smtp_host"] == "new-host.example.net"
    assert provider["smtp_port"] == 2525
    assert provider["smtp_protocol"] == "none"
    assert provider["smtp_username"] == "relay-user"
    assert provider["has_smtp_password"] is True  # the emptied password kept the stored one
    assert len(native_providers(tenant)) == 1


# --- bad input: a 400 in DocSpace's shape, nothing written ----------------------------------------


def test_enable_auth_needs_a_password_when_none_is_stored(tenant: Tenant) -> None:
    response = tenant.client.post(URL, json={**DOC_BODY, "credentialsUserPassword": ""})

    error = assert_error(response, 400, "ArgumentException")
    assert [e["field"] for e in error["errors"]] == ["credentialsUserPassword"]
    assert native_providers(tenant) == []


def test_enable_auth_needs_a_user_name(tenant: Tenant) -> None:
    response = tenant.client.post(URL, json={**DOC_BODY, "credentialsUserName": ""})

    error = assert_error(response, 400, "ArgumentException")
    assert [e["field"] for e in error["errors"]] == ["credentialsUserName"]
    assert native_providers(tenant) == []


def test_host_and_sender_address_are_required(tenant: Tenant) -> None:
    response = tenant.client.post(URL, json={"port": 587, "senderAddress": None})

    error = assert_error(response, 400, "ArgumentException")
    assert {e["field"] for e in error["errors"]} == {"host", "senderAddress"}
    assert {e["code"] for e in error["errors"]} == {"required"}
    assert native_providers(tenant) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "587"}, "port"),
        ({"port": 587.5}, "port"),
        ({"enableSSL": "true"}, "enableSSL"),
        ({"enableAuth": 1}, "enableAuth"),
        ({"host": "bad host!"}, "host"),
        ({"host": ""}, "host"),
        ({"senderAddress": "not-an-address"}, "senderAddress"),
        ({"senderDisplayName": "Evil\r\nBcc: victim@example.com"}, "senderDisplayName"),
        ({"credentialsUserName": "user\nname"}, "credentialsUserName"),
        ({"credentialsUserPassword": "x" * 501}, "credentialsUserPassword"),
        ({"smtpHost": "mail.example.com"}, "smtpHost"),
    ],
)
def test_invalid_fields_are_refused(tenant: Tenant, change: dict[str, Any], field: str) -> None:
    response = tenant.client.post(URL, json={**DOC_BODY, **change})

    error = assert_error(response, 400, "ArgumentException")
    assert field in [e["field"] for e in error["errors"]]
    assert native_providers(tenant) == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"host": "mail.example.com",}', b"\xff\xfe{}", b"[]", b'"text"', b""],
)
def test_bodies_that_are_not_a_json_object_are_refused(tenant: Tenant, content: bytes) -> None:
    response = tenant.client.post(URL, content=content, headers=DOC_HEADERS)

    assert_error(response, 400, "ArgumentException")
    assert native_providers(tenant) == []


def test_a_bad_save_leaves_the_saved_settings_alone(tenant: Tenant) -> None:
    before = save(tenant, DOC_BODY)

    response = tenant.client.post(URL, json={**DOC_BODY, "host": "new.example.com", "port": 0})

    assert_error(response, 400, "ArgumentException")
    assert settings_of(tenant.client.get(URL), "GET") == before


# --- keys and permissions -------------------------------------------------------------------------


def test_without_a_key_every_call_is_401(tenant: Tenant) -> None:
    with httpx.Client(base_url=tenant.server.base_url) as anonymous:
        for method in ("GET", "POST", "DELETE"):
            response = anonymous.request(method, URL, json=DOC_BODY if method == "POST" else None)
            assert_error(response, 401, "AuthenticationException")
        assert_error(anonymous.get(URL + "/test"), 401, "AuthenticationException")
    assert native_providers(tenant) == []


def test_an_unknown_key_is_401(tenant: Tenant) -> None:
    headers = {"Authorization": "Bearer mg_00000000_not-a-real-key"}
    assert_error(tenant.client.get(URL, headers=headers), 401, "AuthenticationException")


def test_a_read_only_key_reads_but_does_not_write(tenant: Tenant) -> None:
    headers = {"Authorization": f"Bearer {tenant.key_with('providers:read')}"}

    settings_of(tenant.client.get(URL, headers=headers), "GET")
    assert_error(tenant.client.post(URL, json=DOC_BODY, headers=headers), 403, "SecurityException")
    assert_error(tenant.client.delete(URL, headers=headers), 403, "SecurityException")
    assert_error(tenant.client.get(URL + "/test", headers=headers), 403, "SecurityException")
    assert native_providers(tenant) == []


def test_a_key_without_read_cannot_read(tenant: Tenant) -> None:
    headers = {"X-API-Key": tenant.key_with("keys:read")}

    with httpx.Client(base_url=tenant.server.base_url, headers=headers) as limited:
        assert_error(limited.get(URL), 403, "SecurityException")
        assert_error(limited.get(URL + "/test/status"), 403, "SecurityException")


# --- the framework's own failures, in DocSpace's shape --------------------------------------------


def test_unknown_paths_under_api_2_0_are_404_in_docspace_shape(tenant: Tenant) -> None:
    assert_error(tenant.client.get("/api/2.0/smtpsettings/other"), 404, "ItemNotFoundException")
    assert_error(tenant.client.get("/api/2.0/portal"), 404, "ItemNotFoundException")


def test_a_wrong_method_is_405_in_docspace_shape(tenant: Tenant) -> None:
    assert_error(tenant.client.put(URL, json=DOC_BODY), 405, "MethodNotAllowedException")
    assert native_providers(tenant) == []
