"""Native /api/v1/smtp-users: every route, generated passwords shown once, bad input,
permissions, and passwords never answered."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import Tenant, new_tenant
from mailgate.services import smtp_users as service
from mailgate.store.models import IdempotencyRecord, SmtpUser

URL = "/api/v1/smtp-users"
PASSWORD = "a-long-enough-password"
ITEM_FIELDS = {
    "id",
    "username",
    "description",
    "is_active",
    "allowed_senders",
    "rate_limit",
    "has_password",
    "created_at",
    "updated_at",
    "last_used_at",
}


def name() -> str:
    return "relay-" + secrets.token_hex(6)


def create(tenant: Tenant, **body: Any) -> dict[str, Any]:
    body.setdefault("username", name())
    response = tenant.client.post(URL, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["meta"]["request_id"].startswith("req_")
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def fields_of(error: dict[str, Any]) -> set[str]:
    return {e["field"] for e in error.get("errors", [])}


def stored_hash(tenant: Tenant, username: str) -> str:
    async def work(session: Any) -> str:
        query = select(SmtpUser.password_hash).where(SmtpUser.username == username)
        return str((await session.execute(query)).scalar_one())

    return str(tenant.server.run(work))


def logs_in(tenant: Tenant, username: str, password: str) -> bool:
    async def work(session: Any) -> bool:
        found = await service.authenticate_smtp_user(
            session=session, username=username, password=password
        )
        return found is not None and found.account_id == tenant.account_id

    return bool(tenant.server.run(work))


def test_create_with_a_password_answers_the_user_without_it(tenant: Tenant) -> None:
    username = name()
    response = tenant.client.post(
        URL,
        json={
            "username": username,
            "password": PASSWORD,
            "description": "Billing app",
            "allowed_senders": ["billing@example.com", "example.org"],
            "rate_limit": {"max_messages": 100, "period_seconds": 3600},
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ok"] is True and body["meta"]["request_id"] == response.headers["x-request-id"]
    data = body["data"]
    assert set(data) == ITEM_FIELDS
    assert data["id"].startswith("smtpu_")
    assert data["username"] == username
    assert data["description"] == "Billing app"
    assert data["is_active"] is True
    assert data["allowed_senders"] == ["billing@example.com", "example.org"]
    assert data["rate_limit"] == {"max_messages": 100, "period_seconds": 3600}
    assert data["has_password"] is True
    assert data["created_at"].endswith("Z") and data["last_used_at"] is None
    assert PASSWORD not in response.text
    stored = stored_hash(tenant, username)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert logs_in(tenant, username, PASSWORD)


def test_create_without_a_password_generates_one_shown_once(tenant: Tenant) -> None:
    created = create(tenant)

    generated = created["generated_password"]
    assert isinstance(generated, str) and len(generated) >= 32
    assert logs_in(tenant, created["username"], generated)
    fetched = tenant.client.get(f"{URL}/{created['id']}")
    listed = tenant.client.get(URL)
    for response in (fetched, listed):
        assert response.status_code == 200
        assert generated not in response.text
        assert "generated_password" not in response.text
    assert generated not in stored_hash(tenant, created["username"])


def test_a_replayed_create_does_not_show_the_password_again(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "create-" + secrets.token_hex(4)}
    body = {"username": name()}

    first = tenant.client.post(URL, json=body, headers=headers)
    replay = tenant.client.post(URL, json=body, headers=headers)

    assert first.status_code == replay.status_code == 201
    generated = first.json()["data"]["generated_password"]
    assert generated
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["data"]["generated_password"] is None
    assert replay.json()["data"]["id"] == first.json()["data"]["id"]
    assert generated not in replay.text

    async def records(session: Any) -> list[bytes]:
        query = select(IdempotencyRecord.response_body).where(
            IdempotencyRecord.account_id == tenant.account_id
        )
        return list((await session.execute(query)).scalars())

    kept = tenant.server.run(records)
    assert kept and all(generated.encode() not in raw for raw in kept)  # type: ignore[attr-defined]
    other = tenant.client.post(URL, json={"username": name()}, headers=headers)
    assert_error(other, 409, "idempotency_conflict")


def test_a_chosen_password_cannot_be_recovered_from_the_idempotency_record(
    tenant: Tenant,
) -> None:
    key = "chosen-" + secrets.token_hex(4)
    raw = json.dumps({"username": name(), "password": PASSWORD}).encode()

    response = tenant.client.post(
        URL, content=raw, headers={"Idempotency-Key": key, "Content-Type": "application/json"}
    )

    assert response.status_code == 201

    async def record(session: Any) -> tuple[str, bytes]:
        query = select(IdempotencyRecord.request_hash, IdempotencyRecord.response_body).where(
            IdempotencyRecord.key == key
        )
        found = (await session.execute(query)).one()
        return found[0], found[1]

    request_hash, body = tenant.server.run(record)  # type: ignore[misc]
    unkeyed = hashlib.sha256()
    for part in (b"POST", f"POST {URL}".encode(), raw):
        unkeyed.update(len(part).to_bytes(8, "big"))
        unkeyed.update(part)
    assert request_hash != unkeyed.hexdigest()  # keyed: no offline guessing of the password
    assert PASSWORD.encode() not in body


def test_get_patch_delete_round_trip(tenant: Tenant) -> None:
    created = create(
        tenant,
        password=PASSWORD,
        description="first",
        allowed_senders=["a@example.com"],
        rate_limit={"max_messages": 5, "period_seconds": 1},
    )
    uid = created["id"]
    fetched = tenant.client.get(f"{URL}/{uid}").json()["data"]
    assert fetched == {k: v for k, v in created.items() if k != "generated_password"}

    patched = tenant.client.patch(
        f"{URL}/{uid}",
        json={"description": None, "is_active": False, "rate_limit": None},
    )
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert data["description"] == ""
    assert data["is_active"] is False
    assert data["rate_limit"] is None
    assert data["allowed_senders"] == ["a@example.com"]  # omitted: kept
    assert "generated_password" not in data
    assert not logs_in(tenant, created["username"], PASSWORD)  # disabled

    renamed = name()
    again = tenant.client.patch(
        f"{URL}/{uid}",
        json={"username": renamed, "is_active": True, "password": "another-long-password"},
    ).json()["data"]
    assert again["username"] == renamed and again["is_active"] is True
    assert logs_in(tenant, renamed, "another-long-password")
    assert not logs_in(tenant, renamed, PASSWORD)

    rotated = tenant.client.patch(f"{URL}/{uid}", json={"generate_password": True})
    assert rotated.status_code == 200
    new_password = rotated.json()["data"]["generated_password"]
    assert logs_in(tenant, renamed, new_password)
    assert not logs_in(tenant, renamed, "another-long-password")

    deleted = tenant.client.delete(f"{URL}/{uid}")
    assert deleted.status_code == 200
    assert deleted.json()["data"] == {"deleted": True, "id": uid}
    assert not logs_in(tenant, renamed, new_password)
    assert_error(tenant.client.get(f"{URL}/{uid}"), 404, "not_found")
    assert_error(tenant.client.delete(f"{URL}/{uid}"), 404, "not_found")


def test_list_pages_with_a_cursor(tenant: Tenant) -> None:
    ids = [create(tenant, password=PASSWORD)["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = tenant.client.get(URL, params=params).json()
        pages += 1
        seen += [item["id"] for item in body["data"]]
        if not body["pagination"]["has_more"]:
            assert body["pagination"]["next_cursor"] is None
            break
        cursor = body["pagination"]["next_cursor"]
    assert seen == ids and pages == 3
    assert_error(tenant.client.get(URL, params={"cursor": "%%%"}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"limit": 0}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"limit": 101}), 400, "validation_error")


def test_a_user_name_is_taken_across_accounts(tenant: Tenant, live_server: Any) -> None:
    username = create(tenant, password=PASSWORD)["username"]

    with new_tenant(live_server) as other:
        error = assert_error(
            other.client.post(URL, json={"username": username, "password": PASSWORD}),
            409,
            "conflict",
        )
        assert username in error["message"]
        mine = create(other, password=PASSWORD)
        taken = other.client.patch(f"{URL}/{mine['id']}", json={"username": username})
        assert_error(taken, 409, "conflict")
        assert [user["id"] for user in other.client.get(URL).json()["data"]] == [mine["id"]]


def test_users_are_private_to_their_account(tenant: Tenant, live_server: Any) -> None:
    uid = create(tenant, password=PASSWORD)["id"]

    with new_tenant(live_server) as other:
        assert other.client.get(URL).json()["data"] == []
        assert_error(other.client.get(f"{URL}/{uid}"), 404, "not_found")
        assert_error(other.client.patch(f"{URL}/{uid}", json={}), 404, "not_found")
        assert_error(other.client.delete(f"{URL}/{uid}"), 404, "not_found")
    assert tenant.client.get(f"{URL}/{uid}").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": "abcd"}, "username"),
        ({"username": "x" * 101}, "username"),
        ({"username": "with space"}, "username"),
        ({"username": "crlf\r\nuser"}, "username"),
        ({"username": 12345}, "username"),
        ({"username": None}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "p" * 201}, "password"),
        ({"password": "has a line\nbreak in it"}, "password"),
        ({"password": 123456789012}, "password"),
        ({"description": "x" * 256}, "description"),
        ({"description": "line\r\nBcc: evil@example.com"}, "description"),
        ({"is_active": "yes"}, "is_active"),
        ({"allowed_senders": "a@example.com"}, "allowed_senders"),
        ({"allowed_senders": ["not an address"]}, "allowed_senders.0"),
        ({"allowed_senders": ["x" * 321]}, "allowed_senders.0"),
        ({"allowed_senders": [f"u{i}@example.com" for i in range(101)]}, "allowed_senders"),
        ({"rate_limit": {"max_messages": 0, "period_seconds": 60}}, "rate_limit.max_messages"),
        ({"rate_limit": {"max_messages": 1, "period_seconds": "60"}}, "rate_limit.period_seconds"),
        ({"rate_limit": {"max_messages": 1}}, "rate_limit.period_seconds"),
        ({"rate_limit": {"max_messages": 1, "period_seconds": 60, "x": 1}}, "rate_limit.x"),
        ({"generate_password": True}, "generate_password"),
        ({"smtp_password": "secret-value-123"}, "smtp_password"),
    ],
)
def test_bad_create_bodies_are_400_naming_the_field(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    if field != "username" and "username" not in body:
        body = {"username": name(), **body}

    error = assert_error(tenant.client.post(URL, json=body), 400, "validation_error")

    assert field in fields_of(error), error
    for secret in ("secret-value-123", "has a line\nbreak in it"):
        assert secret not in str(error)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": None}, "username"),
        ({"password": None}, "password"),
        ({"is_active": None}, "is_active"),
        ({"generate_password": None}, "generate_password"),
        ({"password": PASSWORD, "generate_password": True}, "generate_password"),
        (
            {"rate_limit": {"max_messages": 1, "period_seconds": 366 * 86400 + 1}},
            "rate_limit.period_seconds",
        ),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_patch_bodies_are_400_naming_the_field(
    tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    uid = create(tenant, password=PASSWORD)["id"]

    error = assert_error(tenant.client.patch(f"{URL}/{uid}", json=body), 400, "validation_error")

    assert field in fields_of(error), error


def test_unknown_ids_are_404(tenant: Tenant) -> None:
    for uid in ("smtpu_000000000000000000000000", "12345", "dprov_x", "..%2Fetc"):
        assert_error(tenant.client.get(f"{URL}/{uid}"), 404, "not_found")
        assert_error(tenant.client.patch(f"{URL}/{uid}", json={}), 404, "not_found")
        assert_error(tenant.client.delete(f"{URL}/{uid}"), 404, "not_found")


def test_permissions(tenant: Tenant) -> None:
    uid = create(tenant, password=PASSWORD)["id"]
    reader = {"Authorization": f"Bearer {tenant.key_with('smtp_users:read')}"}
    writer = {"Authorization": f"Bearer {tenant.key_with('smtp_users:write')}"}
    neither = {"Authorization": f"Bearer {tenant.key_with('providers:read', 'ip_auth:write')}"}
    client = tenant.client

    assert client.get(URL, headers=reader).status_code == 200
    assert client.get(f"{URL}/{uid}", headers=reader).status_code == 200
    for response in (
        client.post(URL, json={"username": name()}, headers=reader),
        client.patch(f"{URL}/{uid}", json={}, headers=reader),
        client.delete(f"{URL}/{uid}", headers=reader),
    ):
        error = assert_error(response, 403, "forbidden")
        assert "smtp_users:write" in error["message"]
    assert client.post(URL, json={"username": name()}, headers=writer).status_code == 201
    error = assert_error(client.get(URL, headers=writer), 403, "forbidden")
    assert "smtp_users:read" in error["message"]
    assert_error(client.get(URL, headers=neither), 403, "forbidden")
    with httpx.Client(base_url=tenant.server.base_url) as anonymous:
        assert_error(anonymous.get(URL), 401, "unauthorized")
        assert_error(anonymous.post(URL, json={"username": name()}), 401, "unauthorized")
