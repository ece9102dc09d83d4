"""MailSage ``/api/v1/smtp/configs``: the document's examples, validation, auth, round trips.

Real server (the ``tenant`` fixture), real database; the SMTP test route is covered in
test_mailsage_test_email.py.
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

BASE = "/api/v1/smtp/configs"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CONFIG_KEYS = {
    "id",
    "name",
    "host",
    "port",
    "username",
    "from_email",
    "is_default",
    "use_tls",
    "created_at",
    "updated_at",
}

# The document's "Add SMTP Configuration" request body, verbatim.
DOC_ADD = {
    "name": "Primary SMTP",
    "host": "smtp.gmail.com",
    "port": 587,
    "username": "your-email@gmail.com",
    "password": "your-password",
    "use_tls": True,
    "from_email": "noreply@yourdomain.com",
    "is_default": True,
}
DOC_UPDATE = {"name": "Updated SMTP", "from_email": "new-sender@yourdomain.com"}


def add(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = tenant.client.post(BASE, json={**DOC_ADD, **overrides})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def listing(tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = tenant.client.get(BASE, params={"per_page": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def native(tenant: Tenant, config_id: int) -> dict[str, Any]:
    response = tenant.client.get(f"/api/v1/providers/{config_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "code", "message", "details", "retry_after"}
    return body


# --- the document's examples ---------------------------------------------------------------


def test_doc_add_configuration(tenant: Tenant) -> None:
    response = tenant.client.post(BASE, json=DOC_ADD)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == CONFIG_KEYS
    assert isinstance(body["id"], int)
    expected = {k: v for k, v in DOC_ADD.items() if k != "password"}
    assert {k: body[k] for k in expected} == expected
    assert ISO_Z.match(body["created_at"]) and ISO_Z.match(body["updated_at"])
    assert "your-password" not in response.text
    provider = native(tenant, body["id"])
    assert provider["smtp_protocol"] == "starttls"  # use_tls on 587 is STARTTLS
    assert provider["has_smtp_password"] is True


def test_doc_list_configurations(tenant: Tenant) -> None:
    created = add(tenant)

    response = tenant.client.get(BASE)

    assert response.status_code == 200
    assert response.json() == {
        "data": [created],
        "meta": {"current_page": 1, "total_pages": 1, "total_items": 1},
    }


def test_doc_update_configuration(tenant: Tenant) -> None:
    created = add(tenant)

    response = tenant.client.put(f"{BASE}/{created['id']}", json=DOC_UPDATE)

    assert response.status_code == 200
    body = response.json()
    assert body == {**created, **DOC_UPDATE, "updated_at": body["updated_at"]}
    assert body["updated_at"] >= created["updated_at"]
    assert listing(tenant)["data"] == [body]


def test_doc_delete_configuration(tenant: Tenant) -> None:
    created = add(tenant)

    response = tenant.client.delete(f"{BASE}/{created['id']}")

    assert response.status_code == 200
    assert response.json() == {"message": "SMTP configuration deleted successfully"}
    assert listing(tenant)["data"] == []
    assert_error(tenant.client.delete(f"{BASE}/{created['id']}"), 404, "not_found")


# --- behaviour -----------------------------------------------------------------------------


def test_x_api_key_header_is_accepted(tenant: Tenant) -> None:
    created = add(tenant)
    response = httpx.get(
        tenant.server.base_url + BASE, headers={"X-API-Key": tenant.key}, timeout=30
    )
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["data"]] == [created["id"]]


def test_pagination(tenant: Tenant) -> None:
    ids = [add(tenant, name=f"c{i}", is_default=False)["id"] for i in range(3)]

    first = listing(tenant, page=1, per_page=2)
    second = listing(tenant, page=2, per_page=2)
    beyond = listing(tenant, page=3, per_page=2)

    assert [c["id"] for c in first["data"]] == ids[:2]
    assert [c["id"] for c in second["data"]] == ids[2:]
    assert beyond["data"] == []
    assert first["meta"] == {"current_page": 1, "total_pages": 2, "total_items": 3}
    assert second["meta"] == {"current_page": 2, "total_pages": 2, "total_items": 3}
    assert beyond["meta"] == {"current_page": 3, "total_pages": 2, "total_items": 3}


def test_empty_list_is_one_empty_page(tenant: Tenant) -> None:
    response = tenant.client.get(BASE)
    assert response.json() == {
        "data": [],
        "meta": {"current_page": 1, "total_pages": 1, "total_items": 0},
    }


@pytest.mark.parametrize(
    ("use_tls", "port", "protocol"),
    [(True, 587, "starttls"), (True, 465, "tls"), (True, 25, "starttls"), (False, 25, "none")],
)
def test_use_tls_and_port_choose_the_security(
    tenant: Tenant, use_tls: bool, port: int, protocol: str
) -> None:
    created = add(tenant, use_tls=use_tls, port=port)
    assert created["use_tls"] is use_tls
    assert native(tenant, created["id"])["smtp_protocol"] == protocol


def test_use_tls_defaults_to_true(tenant: Tenant) -> None:
    body = {k: v for k, v in DOC_ADD.items() if k != "use_tls"}
    response = tenant.client.post(BASE, json=body)
    assert response.status_code == 201
    assert response.json()["use_tls"] is True


def test_update_changes_only_the_fields_sent(tenant: Tenant) -> None:
    created = add(tenant, port=465)
    assert native(tenant, created["id"])["smtp_protocol"] == "tls"

    renamed = tenant.client.put(f"{BASE}/{created['id']}", json={"name": "Renamed"}).json()
    assert native(tenant, created["id"])["smtp_protocol"] == "tls"
    assert {**renamed, "updated_at": None} == {**created, "name": "Renamed", "updated_at": None}

    moved = tenant.client.put(f"{BASE}/{created['id']}", json={"port": 587}).json()
    assert (moved["port"], moved["use_tls"]) == (587, True)
    assert native(tenant, created["id"])["smtp_protocol"] == "starttls"

    plain = tenant.client.put(f"{BASE}/{created['id']}", json={"use_tls": False}).json()
    assert (plain["port"], plain["use_tls"]) == (587, False)
    assert native(tenant, created["id"])["smtp_protocol"] == "none"


def test_update_password_is_stored_and_never_shown(tenant: Tenant) -> None:
    created = add(tenant)
    response = tenant.client.put(f"{BASE}/{created['id']}", json={"password": "n3w-secret"})
    assert response.status_code == 200
    assert "n3w-secret" not in response.text and "password" not in response.json()
    assert native(tenant, created["id"])["has_smtp_password"] is True


def test_only_one_default(tenant: Tenant) -> None:
    first = add(tenant, name="first", is_default=True)
    second = add(tenant, name="second", is_default=True)
    defaults = {c["id"]: c["is_default"] for c in listing(tenant)["data"]}
    assert defaults == {first["id"]: False, second["id"]: True}

    tenant.client.put(f"{BASE}/{first['id']}", json={"is_default": True})
    defaults = {c["id"]: c["is_default"] for c in listing(tenant)["data"]}
    assert defaults == {first["id"]: True, second["id"]: False}


def test_other_accounts_configs_are_invisible(tenant: Tenant) -> None:
    created = add(tenant)
    stranger = _stranger_client(tenant)
    try:
        assert stranger.get(BASE).json()["data"] == []
        assert_error(stranger.put(f"{BASE}/{created['id']}", json=DOC_UPDATE), 404, "not_found")
        assert_error(stranger.delete(f"{BASE}/{created['id']}"), 404, "not_found")
    finally:
        stranger.close()
    assert listing(tenant)["data"] == [created]


def _stranger_client(tenant: Tenant) -> httpx.Client:
    """A client for a second, unrelated account."""

    async def work(session: Any) -> str:
        account = await accounts.create_account(
            session=session, name="stranger", email=f"stranger-{secrets.token_hex(4)}@example.test"
        )
        _, key = await accounts.create_key(session=session, account_id=account.id, name="k")
        return key

    key = tenant.server.run(work)
    return httpx.Client(
        base_url=tenant.server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


# --- cross-surface -------------------------------------------------------------------------


def test_config_shows_up_in_the_native_api(tenant: Tenant) -> None:
    created = add(tenant)
    provider = native(tenant, created["id"])
    assert provider["id"].startswith("dprov_")
    assert {
        "name": provider["name"],
        "host": provider["smtp_host"],
        "port": provider["smtp_port"],
        "username": provider["smtp_username"],
        "from_email": provider["from_email"],
        "is_default": provider["is_default"],
        "created_at": provider["created_at"],
        "updated_at": provider["updated_at"],
    } == {k: v for k, v in created.items() if k not in ("id", "use_tls")}
    same = tenant.client.get(f"/api/v1/providers/{provider['id']}").json()["data"]
    assert same["name"] == created["name"]


@pytest.mark.parametrize(
    ("protocol", "use_tls"), [("starttls", True), ("ssl", True), ("none", False)]
)
def test_native_provider_shows_up_here(tenant: Tenant, protocol: str, use_tls: bool) -> None:
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
        },
    )
    assert response.status_code == 201, response.text
    provider = response.json()["data"]

    [config] = listing(tenant)["data"]

    assert native(tenant, config["id"])["id"] == provider["id"]
    assert config == {
        "id": config["id"],
        "name": "Native one",
        "host": "mail.example.net",
        "port": 2525,
        "username": "native-user",
        "from_email": "native@example.net",
        "is_default": False,
        "use_tls": use_tls,
        "created_at": provider["created_at"],
        "updated_at": provider["updated_at"],
    }


def test_update_through_here_is_seen_natively(tenant: Tenant) -> None:
    created = add(tenant)
    tenant.client.put(f"{BASE}/{created['id']}", json={"host": "smtp.example.org", "port": 465})
    provider = native(tenant, created["id"])
    assert (provider["smtp_host"], provider["smtp_port"], provider["smtp_protocol"]) == (
        "smtp.example.org",
        465,
        "tls",
    )


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", BASE, DOC_ADD),
        ("GET", BASE, None),
        ("PUT", f"{BASE}/1", DOC_UPDATE),
        ("DELETE", f"{BASE}/1", None),
        ("POST", f"{BASE}/1/test", {"recipient": "test@example.com"}),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mg_wrong"}, {"X-API-Key": "x"}])
def test_no_or_bad_key_is_401(
    live_server: Any, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    response = httpx.request(
        method, live_server.base_url + path, json=body, headers=headers, timeout=30
    )
    assert_error(response, 401, "unauthorized")


def test_read_only_key_cannot_write(tenant: Tenant) -> None:
    created = add(tenant)
    before = listing(tenant)
    reader = {"Authorization": f"Bearer {tenant.key_with('providers:read')}"}
    url = tenant.server.base_url + BASE

    assert httpx.get(url, headers=reader, timeout=30).status_code == 200
    writes = [
        ("POST", url, DOC_ADD),
        ("PUT", f"{url}/{created['id']}", DOC_UPDATE),
        ("DELETE", f"{url}/{created['id']}", None),
        ("POST", f"{url}/{created['id']}/test", {"recipient": "test@example.com"}),
    ]
    for method, target, body in writes:
        response = httpx.request(method, target, json=body, headers=reader, timeout=30)
        assert_error(response, 403, "forbidden")
    assert listing(tenant) == before
    assert native(tenant, created["id"])["last_tested_at"] is None


# --- bad input: 400 in shape, nothing written -----------------------------------------------


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in DOC_ADD.items() if k != name}


BAD_ADDS: list[tuple[str, Any, str]] = [
    *[
        (f"missing {n}", _without(n), n)
        for n in ("name", "host", "port", "username", "password", "from_email")
    ],
    ("unknown field", {**DOC_ADD, "api_key": "x"}, "api_key"),
    ("port as string", {**DOC_ADD, "port": "587"}, "port"),
    ("port zero", {**DOC_ADD, "port": 0}, "port"),
    ("port too big", {**DOC_ADD, "port": 65536}, "port"),
    ("use_tls as string", {**DOC_ADD, "use_tls": "yes"}, "use_tls"),
    ("is_default as 1", {**DOC_ADD, "is_default": 1}, "is_default"),
    ("CRLF in name", {**DOC_ADD, "name": "a\r\nBcc: x@example.com"}, "name"),
    ("CRLF in username", {**DOC_ADD, "username": "u\nv"}, "username"),
    ("empty name", {**DOC_ADD, "name": ""}, "name"),
    ("bad email", {**DOC_ADD, "from_email": "not-an-email"}, "from_email"),
    ("bad host", {**DOC_ADD, "host": "smtp gmail com"}, "host"),
    ("null host", {**DOC_ADD, "host": None}, "host"),
    ("empty password", {**DOC_ADD, "password": ""}, "password"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_ADDS, ids=[c[0] for c in BAD_ADDS])
def test_bad_add_is_400(tenant: Tenant, case: str, body: Any, field: str) -> None:
    error = assert_error(tenant.client.post(BASE, json=body), 400, "invalid_request")
    assert error["error"] == "Invalid request"
    assert field in [d["field"] for d in error["details"]]
    assert listing(tenant)["meta"]["total_items"] == 0


RAW_BODIES = [
    ("invalid json", b'{"name": ', "application/json"),
    ("bad utf-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("array", b"[1, 2]", "application/json"),
    ("empty", b"", "application/json"),
    ("string", b'"hello"', "application/json"),
]


@pytest.mark.parametrize(("case", "raw", "ctype"), RAW_BODIES, ids=[c[0] for c in RAW_BODIES])
def test_unparseable_bodies_are_400_everywhere(
    tenant: Tenant, case: str, raw: bytes, ctype: str
) -> None:
    created = add(tenant)
    before = listing(tenant)
    for method, path in [
        ("POST", BASE),
        ("PUT", f"{BASE}/{created['id']}"),
        ("POST", f"{BASE}/{created['id']}/test"),
    ]:
        response = tenant.client.request(method, path, content=raw, headers={"Content-Type": ctype})
        assert_error(response, 400, "invalid_request")
    assert listing(tenant) == before
    assert native(tenant, created["id"])["last_tested_at"] is None


BAD_UPDATES: list[tuple[str, Any, str]] = [
    ("null name", {"name": None}, "name"),
    ("null use_tls", {"use_tls": None}, "use_tls"),
    ("unknown field", {"nickname": "x"}, "nickname"),
    ("port as string", {"port": "465"}, "port"),
    ("port negative", {"port": -1}, "port"),
    ("bad email", {"from_email": "a@"}, "from_email"),
    ("CRLF in name", {"name": "x\r\n"}, "name"),
    ("bad host", {"host": "-bad-.example"}, "host"),
    ("mixed good and bad", {"name": "fine", "port": 99999}, "port"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_UPDATES, ids=[c[0] for c in BAD_UPDATES])
def test_bad_update_is_400_and_changes_nothing(
    tenant: Tenant, case: str, body: Any, field: str
) -> None:
    created = add(tenant)
    error = assert_error(
        tenant.client.put(f"{BASE}/{created['id']}", json=body), 400, "invalid_request"
    )
    assert field in [d["field"] for d in error["details"]]
    assert listing(tenant)["data"] == [created]


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "per_page=0", "per_page=101", "per_page=1.5"],
)
def test_bad_list_query_is_400(tenant: Tenant, query: str) -> None:
    assert_error(tenant.client.get(f"{BASE}?{query}"), 400, "invalid_request")


@pytest.mark.parametrize(
    ("method", "body"),
    [("PUT", DOC_UPDATE), ("DELETE", None), ("POST", {"recipient": "test@example.com"})],
)
def test_unknown_and_malformed_ids(tenant: Tenant, method: str, body: Any) -> None:
    created = add(tenant)
    suffix = "/test" if method == "POST" else ""
    for config_id in ("999999999", "99999999999999999999999"):
        response = tenant.client.request(method, f"{BASE}/{config_id}{suffix}", json=body)
        assert_error(response, 404, "not_found")
    response = tenant.client.request(method, f"{BASE}/abc{suffix}", json=body)
    error = assert_error(response, 400, "invalid_request")
    assert [d["field"] for d in error["details"]] == ["id"]
    assert listing(tenant)["data"] == [created]


def test_wrong_method_is_405_in_shape(tenant: Tenant) -> None:
    created = add(tenant)
    assert_error(tenant.client.get(f"{BASE}/{created['id']}"), 405, "method_not_allowed")
    assert_error(tenant.client.patch(f"{BASE}/{created['id']}", json={}), 405, "method_not_allowed")


def test_unknown_path_under_the_prefix_is_404_in_shape(tenant: Tenant) -> None:
    assert_error(tenant.client.get(f"{BASE}/1/nothing"), 404, "not_found")


def test_errors_carry_no_secret(tenant: Tenant) -> None:
    response = tenant.client.post(BASE, json={**DOC_ADD, "host": "bad host"})
    assert "your-password" not in response.text
    assert json.loads(response.text)["code"] == "invalid_request"


def test_declared_oversized_body_is_413_in_shape(tenant: Tenant) -> None:
    """A Content-Length over the server's limit is refused before the body is read."""
    host, port = tenant.server.base_url.removeprefix("http://").split(":")
    limit = tenant.server.settings.max_request_bytes
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {BASE} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tenant.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {limit + 1}\r\n"
            "Connection: close\r\n\r\n{}".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    error = json.loads(body)
    assert (error["error"], error["code"]) == ("Payload too large", "payload_too_large")
    assert listing(tenant)["meta"]["total_items"] == 0
