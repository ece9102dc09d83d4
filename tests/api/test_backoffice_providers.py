"""Back Office ``/api/v2/mail/providers``: the document's examples, validation, auth, round trips.

The document's curl commands send JSON with curl's default Content-Type
(``application/x-www-form-urlencoded``); the tests send them exactly so. ``/status`` against
real SMTP servers is in test_backoffice_status.py.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from typing import Any

import httpx
import pytest

from conftest import Tenant
from mailgate.services import accounts

BASE = "/api/v2/mail/providers"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl --data-raw sends
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROVIDER_KEYS = {
    "id",
    "caption",
    "driver",
    "host",
    "port",
    "username",
    "sendFrom",
    "sendFromName",
    "encryption",
    "isEnabled",
    "hasPassword",
    "status",
    "statusReason",
    "lastTestedAt",
    "createdAt",
    "updatedAt",
}

# The document's create body, verbatim (it is printed with --request GET).
DOC_CREATE = """{
  "driver": "smtp",
  "host": "host.example.com",
  "port": 25,
  "username": "User",
  "password": "Password",
  "sendFrom": "user@example.com",
  "sendFromName": "Company name",
  "encryption": "ssl",
  "isEnabled": 1,
  "caption": "My SMTP connection"
}"""
# The document's PATCH body, verbatim.
DOC_PATCH = """{
  "caption": "My SMTP connection",
  "driver": "smtp",
  "host": "host.example.com",
  "port": 25,
  "username": "User",
  "password": "Password",
  "sendFrom": "user@example.com",
  "sendFromName": "Company name",
  "encryption": "ssl",
  "isEnabled": 1
}"""
VALID = {
    "driver": "smtp",
    "host": "smtp.example.org",
    "port": 587,
    "username": "someone",
    "password": "p4ss-word",
    "sendFrom": "someone@example.org",
    "sendFromName": "Example Org",
    "encryption": "tls",
    "isEnabled": True,
    "caption": "Original",
}


def create(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = tenant.client.post(BASE, content=json.dumps({**VALID, **overrides}), headers=FORM)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def listing(tenant: Tenant) -> list[dict[str, Any]]:
    response = tenant.client.get(BASE, params={"limit": 100})
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def native(tenant: Tenant, provider_id: int | str) -> dict[str, Any]:
    response = tenant.client.get(f"/api/v1/providers/{provider_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "details", "retryAfter"}
    for detail in error.get("details", []):
        assert set(detail) == {"field", "message"}
    return error


# --- the document's examples ---------------------------------------------------------------


def test_doc_list(tenant: Tenant) -> None:
    first, second = create(tenant, caption="one"), create(tenant, caption="two")

    response = tenant.client.get(
        f"{BASE}?limit=10&offset=0",
        headers={"Authorization": f"Bearer {tenant.key}", "accept-language": "ja"},
    )

    assert response.status_code == 200
    assert response.json() == [first, second]


def test_doc_get(tenant: Tenant) -> None:
    created = create(tenant)

    response = tenant.client.get(
        f"{BASE}/{created['id']}", headers={"Authorization": f"Bearer {tenant.key}"}
    )

    assert response.status_code == 200
    assert response.json() == created


def test_doc_create_as_printed_with_get_lists_and_creates_nothing(tenant: Tenant) -> None:
    existing = create(tenant)

    response = tenant.client.request(
        "GET",
        BASE,
        content=DOC_CREATE,
        headers={"Authorization": f"Bearer {tenant.key}", **FORM},
    )

    assert response.status_code == 200
    assert response.json() == [existing]
    assert listing(tenant) == [existing]


def test_doc_create_with_post(tenant: Tenant) -> None:
    response = tenant.client.post(
        BASE, content=DOC_CREATE, headers={"Authorization": f"Bearer {tenant.key}", **FORM}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == PROVIDER_KEYS
    assert isinstance(body["id"], int)
    assert {k: v for k, v in body.items() if k not in ("id", "createdAt", "updatedAt")} == {
        "caption": "My SMTP connection",
        "driver": "smtp",
        "host": "host.example.com",
        "port": 25,
        "username": "User",
        "sendFrom": "user@example.com",
        "sendFromName": "Company name",
        "encryption": "ssl",
        "isEnabled": True,
        "hasPassword": True,
        "status": "active",
        "statusReason": None,
        "lastTestedAt": None,
    }
    assert ISO_Z.match(body["createdAt"]) and ISO_Z.match(body["updatedAt"])
    assert '"Password"' not in response.text
    assert listing(tenant) == [body]
    assert native(tenant, body["id"])["smtp_protocol"] == "tls"  # "ssl" is implicit TLS


def test_doc_patch(tenant: Tenant) -> None:
    created = create(tenant, isEnabled=False)

    response = tenant.client.patch(
        f"{BASE}/{created['id']}",
        content=DOC_PATCH,
        headers={"Authorization": f"Bearer {tenant.key}", **FORM},
    )

    assert response.status_code == 200
    body = response.json()
    assert body == {
        **created,
        "caption": "My SMTP connection",
        "host": "host.example.com",
        "port": 25,
        "username": "User",
        "sendFrom": "user@example.com",
        "sendFromName": "Company name",
        "encryption": "ssl",
        "isEnabled": True,
        "status": "active",
        "updatedAt": body["updatedAt"],
    }
    assert '"Password"' not in response.text
    assert listing(tenant) == [body]


def test_doc_delete(tenant: Tenant) -> None:
    created = create(tenant)

    response = tenant.client.delete(
        f"{BASE}/{created['id']}", headers={"Authorization": f"Bearer {tenant.key}"}
    )

    assert response.status_code == 204
    assert response.content == b""
    assert listing(tenant) == []
    assert_error(tenant.client.get(f"{BASE}/{created['id']}"), 404, "not_found")


# --- behaviour -----------------------------------------------------------------------------


def test_json_content_type_works_too(tenant: Tenant) -> None:
    response = tenant.client.post(BASE, json=VALID)
    assert response.status_code == 201
    assert response.json()["caption"] == "Original"


def test_caption_defaults_to_the_host(tenant: Tenant) -> None:
    body = {k: v for k, v in VALID.items() if k != "caption"}
    response = tenant.client.post(BASE, content=json.dumps(body), headers=FORM)
    assert response.status_code == 201
    assert response.json()["caption"] == "smtp.example.org"
    assert native(tenant, response.json()["id"])["name"] == "smtp.example.org"


@pytest.mark.parametrize(("encryption", "protocol"), [("tls", "starttls"), ("ssl", "tls")])
def test_encryption_follows_the_laravel_convention(
    tenant: Tenant, encryption: str, protocol: str
) -> None:
    created = create(tenant, encryption=encryption)
    assert created["encryption"] == encryption
    assert native(tenant, created["id"])["smtp_protocol"] == protocol


@pytest.mark.parametrize(
    ("value", "enabled"), [(True, True), (False, False), (1, True), (0, False)]
)
def test_is_enabled_accepts_booleans_and_1_0(tenant: Tenant, value: Any, enabled: bool) -> None:
    created = create(tenant, isEnabled=value)
    assert created["isEnabled"] is enabled
    assert created["status"] == ("active" if enabled else "inactive")
    assert native(tenant, created["id"])["is_active"] is enabled

    flipped = tenant.client.patch(
        f"{BASE}/{created['id']}", content=json.dumps({"isEnabled": int(not enabled)}), headers=FORM
    )
    assert flipped.status_code == 200
    assert flipped.json()["isEnabled"] is (not enabled)
    assert native(tenant, created["id"])["is_active"] is (not enabled)


def test_patch_changes_only_the_fields_sent(tenant: Tenant) -> None:
    created = create(tenant)
    response = tenant.client.patch(
        f"{BASE}/{created['id']}", content='{"sendFromName": "Renamed Ltd"}', headers=FORM
    )
    assert response.status_code == 200
    body = response.json()
    assert body == {**created, "sendFromName": "Renamed Ltd", "updatedAt": body["updatedAt"]}


def test_patch_password_is_stored_and_never_shown(tenant: Tenant) -> None:
    created = create(tenant)
    response = tenant.client.patch(
        f"{BASE}/{created['id']}", content='{"password": "n3w-secret"}', headers=FORM
    )
    assert response.status_code == 200
    assert "n3w-secret" not in response.text and "password" not in response.json()
    assert response.json()["hasPassword"] is True


def test_limit_and_offset(tenant: Tenant) -> None:
    ids = [create(tenant, caption=f"p{i}")["id"] for i in range(3)]

    def page(query: str) -> list[int]:
        response = tenant.client.get(f"{BASE}?{query}")
        assert response.status_code == 200
        return [p["id"] for p in response.json()]

    assert page("limit=2&offset=0") == ids[:2]
    assert page("limit=2&offset=2") == ids[2:]
    assert page("limit=2&offset=3") == []
    assert page("") == ids


# --- cross-surface -------------------------------------------------------------------------


def test_created_here_shows_up_natively(tenant: Tenant) -> None:
    created = create(tenant)
    provider = native(tenant, created["id"])
    assert provider["id"].startswith("dprov_")
    assert {
        "caption": provider["name"],
        "host": provider["smtp_host"],
        "port": provider["smtp_port"],
        "username": provider["smtp_username"],
        "sendFrom": provider["from_email"],
        "sendFromName": provider["from_name"],
        "isEnabled": provider["is_active"],
        "hasPassword": provider["has_smtp_password"],
        "status": provider["status"],
        "createdAt": provider["created_at"],
        "updatedAt": provider["updated_at"],
    } == {
        k: created[k]
        for k in (
            "caption",
            "host",
            "port",
            "username",
            "sendFrom",
            "sendFromName",
            "isEnabled",
            "hasPassword",
            "status",
            "createdAt",
            "updatedAt",
        )
    }
    assert provider["smtp_protocol"] == "starttls"


@pytest.mark.parametrize(
    ("protocol", "encryption"), [("starttls", "tls"), ("ssl", "ssl"), ("none", None)]
)
def test_native_provider_shows_up_here(
    tenant: Tenant, protocol: str, encryption: str | None
) -> None:
    response = tenant.client.post(
        "/api/v1/providers",
        json={
            "name": "Native one",
            "smtp_host": "mail.example.net",
            "smtp_port": 2525,
            "smtp_protocol": protocol,
            "smtp_username": "native-user",
            "smtp_password": "native-secret",
            "from_email": "native@example.net",
            "from_name": "Native Sender",
        },
    )
    assert response.status_code == 201, response.text
    provider = response.json()["data"]

    [item] = listing(tenant)

    assert native(tenant, item["id"])["id"] == provider["id"]
    assert item == {
        "id": item["id"],
        "caption": "Native one",
        "driver": "smtp",
        "host": "mail.example.net",
        "port": 2525,
        "username": "native-user",
        "sendFrom": "native@example.net",
        "sendFromName": "Native Sender",
        "encryption": encryption,
        "isEnabled": True,
        "hasPassword": True,
        "status": "active",
        "statusReason": None,
        "lastTestedAt": None,
        "createdAt": provider["created_at"],
        "updatedAt": provider["updated_at"],
    }
    assert tenant.client.get(f"{BASE}/{item['id']}").json() == item


def test_native_deactivation_is_seen_here(tenant: Tenant) -> None:
    created = create(tenant)
    response = tenant.client.post(f"/api/v1/providers/{created['id']}/deactivate")
    assert response.status_code == 200
    item = tenant.client.get(f"{BASE}/{created['id']}").json()
    assert (item["isEnabled"], item["status"]) == (False, "inactive")


def test_mailsage_config_shows_up_here(tenant: Tenant) -> None:
    response = tenant.client.post(
        "/api/v1/smtp/configs",
        json={
            "name": "From MailSage",
            "host": "smtp.example.com",
            "port": 465,
            "username": "ms-user",
            "password": "ms-secret",
            "from_email": "ms@example.com",
        },
    )
    assert response.status_code == 201
    config = response.json()
    item = tenant.client.get(f"{BASE}/{config['id']}").json()
    assert (item["caption"], item["host"], item["port"], item["encryption"], item["sendFrom"]) == (
        "From MailSage",
        "smtp.example.com",
        465,
        "ssl",
        "ms@example.com",
    )


# --- auth ----------------------------------------------------------------------------------


ROUTES = [
    ("GET", BASE, None),
    ("POST", BASE, DOC_CREATE),
    ("GET", f"{BASE}/1", None),
    ("GET", f"{BASE}/1/status", None),
    ("PATCH", f"{BASE}/1", DOC_PATCH),
    ("DELETE", f"{BASE}/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mg_nope"}])
def test_no_or_bad_key_is_401(
    live_server: Any, method: str, path: str, body: str | None, headers: dict[str, str]
) -> None:
    response = httpx.request(
        method, live_server.base_url + path, content=body, headers={**headers, **FORM}, timeout=30
    )
    assert_error(response, 401, "unauthorized")


def test_read_only_key_reads_but_cannot_write(tenant: Tenant) -> None:
    created = create(tenant)
    reader = {"Authorization": f"Bearer {tenant.key_with('providers:read')}", **FORM}
    url = tenant.server.base_url + BASE

    assert httpx.get(url, headers=reader, timeout=30).json() == [created]
    assert httpx.get(f"{url}/{created['id']}", headers=reader, timeout=30).json() == created
    for method, target, body in [
        ("POST", url, DOC_CREATE),
        ("PATCH", f"{url}/{created['id']}", DOC_PATCH),
        ("DELETE", f"{url}/{created['id']}", None),
        ("GET", f"{url}/{created['id']}/status", None),  # connects and records: a write
    ]:
        response = httpx.request(method, target, content=body, headers=reader, timeout=30)
        assert_error(response, 403, "forbidden")
    assert listing(tenant) == [created]


# --- bad input: 4xx in shape, nothing written -----------------------------------------------


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != name}


BAD_CREATES: list[tuple[str, Any, str]] = [
    *[
        (f"missing {n}", _without(n), n)
        for n in (
            "driver",
            "host",
            "port",
            "username",
            "password",
            "sendFrom",
            "sendFromName",
            "encryption",
            "isEnabled",
        )
    ],
    ("driver sendmail", {**VALID, "driver": "sendmail"}, "driver"),
    ("encryption none", {**VALID, "encryption": "none"}, "encryption"),
    ("encryption starttls", {**VALID, "encryption": "starttls"}, "encryption"),
    ("isEnabled 2", {**VALID, "isEnabled": 2}, "isEnabled"),
    ("isEnabled '1'", {**VALID, "isEnabled": "1"}, "isEnabled"),
    ("isEnabled 'true'", {**VALID, "isEnabled": "true"}, "isEnabled"),
    ("isEnabled 1.0", {**VALID, "isEnabled": 1.0}, "isEnabled"),
    ("isEnabled null", {**VALID, "isEnabled": None}, "isEnabled"),
    ("port as string", {**VALID, "port": "25"}, "port"),
    ("port zero", {**VALID, "port": 0}, "port"),
    ("port too big", {**VALID, "port": 65536}, "port"),
    ("unknown field", {**VALID, "fromName": "x"}, "fromName"),
    ("CRLF in sendFromName", {**VALID, "sendFromName": "Co\r\nBcc: x@example.com"}, "sendFromName"),
    ("CRLF in caption", {**VALID, "caption": "a\nb"}, "caption"),
    ("empty caption", {**VALID, "caption": ""}, "caption"),
    ("null caption", {**VALID, "caption": None}, "caption"),
    ("bad sendFrom", {**VALID, "sendFrom": "user@"}, "sendFrom"),
    ("bad host", {**VALID, "host": "host example com"}, "host"),
    ("empty password", {**VALID, "password": ""}, "password"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES])
def test_bad_create_is_400(tenant: Tenant, case: str, body: Any, field: str) -> None:
    response = tenant.client.post(BASE, content=json.dumps(body), headers=FORM)
    error = assert_error(response, 400, "invalid_request")
    assert field in [d["field"] for d in error["details"]]
    assert listing(tenant) == []


BAD_PATCHES: list[tuple[str, Any, str]] = [
    ("null caption", {"caption": None}, "caption"),
    ("null host", {"host": None}, "host"),
    ("null isEnabled", {"isEnabled": None}, "isEnabled"),
    ("isEnabled 'yes'", {"isEnabled": "yes"}, "isEnabled"),
    ("isEnabled -1", {"isEnabled": -1}, "isEnabled"),
    ("driver mail", {"driver": "mail"}, "driver"),
    ("encryption SSL", {"encryption": "SSL"}, "encryption"),
    ("unknown field", {"status": "active"}, "status"),
    ("port as string", {"port": "587"}, "port"),
    ("CRLF in username", {"username": "u\r\n"}, "username"),
    ("bad sendFrom", {"sendFrom": "nobody"}, "sendFrom"),
    ("good and bad", {"caption": "fine", "port": 70000}, "port"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_PATCHES, ids=[c[0] for c in BAD_PATCHES])
def test_bad_patch_is_400_and_changes_nothing(
    tenant: Tenant, case: str, body: Any, field: str
) -> None:
    created = create(tenant)
    url = f"{BASE}/{created['id']}"
    response = tenant.client.patch(url, content=json.dumps(body), headers=FORM)
    error = assert_error(response, 400, "invalid_request")
    assert field in [d["field"] for d in error["details"]]
    assert listing(tenant) == [created]


RAW_BODIES = [
    ("invalid json", b'{"driver": '),
    ("bad utf-8", b'{"caption": "\xff\xfe"}'),
    ("array", b"[1, 2]"),
    ("empty", b""),
    ("form encoded", b"driver=smtp&host=x"),
]


@pytest.mark.parametrize(("case", "raw"), RAW_BODIES, ids=[c[0] for c in RAW_BODIES])
def test_unparseable_bodies_are_400(tenant: Tenant, case: str, raw: bytes) -> None:
    created = create(tenant)
    for method, path in [("POST", BASE), ("PATCH", f"{BASE}/{created['id']}")]:
        response = tenant.client.request(method, path, content=raw, headers=FORM)
        assert_error(response, 400, "invalid_request")
    assert listing(tenant) == [created]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=abc", "offset=-1", "offset=x", "limit=2.5"]
)
def test_bad_list_query_is_400(tenant: Tenant, query: str) -> None:
    assert_error(tenant.client.get(f"{BASE}?{query}"), 400, "invalid_request")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("GET", "", None), ("GET", "/status", None), ("PATCH", "", DOC_PATCH), ("DELETE", "", None)],
)
def test_unknown_and_malformed_ids(
    tenant: Tenant, method: str, suffix: str, body: str | None
) -> None:
    created = create(tenant)
    for provider_id in ("999999999", "99999999999999999999999"):
        response = tenant.client.request(
            method, f"{BASE}/{provider_id}{suffix}", content=body, headers=FORM
        )
        assert_error(response, 404, "not_found")
    response = tenant.client.request(method, f"{BASE}/abc{suffix}", content=body, headers=FORM)
    error = assert_error(response, 400, "invalid_request")
    assert [d["field"] for d in error["details"]] == ["providerId"]
    assert listing(tenant) == [created]


def test_wrong_method_is_405_in_shape(tenant: Tenant) -> None:
    created = create(tenant)
    assert_error(
        tenant.client.put(f"{BASE}/{created['id']}", content=DOC_PATCH, headers=FORM),
        405,
        "method_not_allowed",
    )
    assert_error(tenant.client.delete(BASE), 405, "method_not_allowed")
    assert listing(tenant) == [created]


def test_another_accounts_provider_is_404(tenant: Tenant) -> None:
    created = create(tenant)
    response = tenant.client.post(
        "/api/v1/providers",
        json={
            "name": "mine",
            "smtp_host": "a.example",
            "smtp_port": 25,
            "smtp_protocol": "none",
            "smtp_username": "u",
            "smtp_password": "p",
        },
    )
    assert response.status_code == 201

    async def stranger_key(session: Any) -> str:
        account = await accounts.create_account(
            session=session, name="stranger", email=f"stranger-{secrets.token_hex(4)}@example.test"
        )
        _, key = await accounts.create_key(session=session, account_id=account.id, name="k")
        return key

    key = tenant.server.run(stranger_key)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{tenant.server.base_url}{BASE}/{created['id']}"
    assert_error(httpx.get(url, headers=headers, timeout=30), 404, "not_found")
    assert_error(httpx.delete(url, headers=headers, timeout=30), 404, "not_found")
    assert httpx.get(tenant.server.base_url + BASE, headers=headers, timeout=30).json() == []
    assert len(listing(tenant)) == 2


def test_declared_oversized_body_is_413_in_shape(tenant: Tenant) -> None:
    """A Content-Length over the server's limit is refused before the body is read."""
    host, port = tenant.server.base_url.removeprefix("http://").split(":")
    limit = tenant.server.settings.max_request_bytes
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {BASE} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tenant.key}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {limit + 1}\r\n"
            "Connection: close\r\n\r\n{}".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert listing(tenant) == []
