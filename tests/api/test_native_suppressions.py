"""Native /api/v1/suppressions: add an address or a domain, list with filters and cursor
paging, get by id or value, remove; duplicates and races; bad input; permissions; a suppressed
domain refuses a real send."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from conftest import Tenant, new_tenant
from mailgate.services.suppressions import find_suppressed

URL = "/api/v1/suppressions"


def add(tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = tenant.client.post(URL, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def suppressed(tenant: Tenant, *addresses: str) -> set[str]:
    async def work(session: Any) -> set[str]:
        return await find_suppressed(
            session=session, account_id=tenant.account_id, addresses=addresses
        )

    found: set[str] = tenant.server.run(work)  # type: ignore[assignment]
    return found


def test_add_get_list_remove(tenant: Tenant) -> None:
    person = add(tenant, email="Someone@Example.COM", detail="asked by phone")
    assert set(person) == {"id", "value", "kind", "reason", "detail", "created_at"}
    assert person["id"].startswith("sup_")
    assert (person["value"], person["kind"], person["reason"]) == (
        "someone@example.com",
        "email",
        "manual",
    )
    assert person["detail"] == "asked by phone"
    domain = add(tenant, domain="@Blocked.Example", reason="complaint")
    assert (domain["value"], domain["kind"], domain["reason"]) == (
        "blocked.example",
        "domain",
        "complaint",
    )
    assert suppressed(tenant, "SOMEONE@example.com", "any@blocked.example", "ok@example.com") == {
        "SOMEONE@example.com",
        "any@blocked.example",
    }

    assert tenant.client.get(f"{URL}/{person['id']}").json()["data"] == person
    by_value = tenant.client.get(f"{URL}/someone@EXAMPLE.com").json()["data"]
    assert by_value == person
    assert tenant.client.get(f"{URL}/blocked.example").json()["data"] == domain

    listed = tenant.client.get(URL).json()
    assert [item["id"] for item in listed["data"]] == [domain["id"], person["id"]]  # newest first
    assert listed["pagination"] == {"has_more": False, "next_cursor": None}

    removed = tenant.client.delete(f"{URL}/{person['id']}")
    assert removed.status_code == 200
    assert removed.json()["data"] == {"deleted": True, "id": person["id"]}
    assert suppressed(tenant, "someone@example.com") == set()
    assert_error(tenant.client.get(f"{URL}/{person['id']}"), 404, "not_found")
    assert_error(tenant.client.delete(f"{URL}/{person['id']}"), 404, "not_found")
    gone = tenant.client.delete(f"{URL}/Blocked.Example")
    assert gone.status_code == 200
    assert tenant.client.get(URL).json()["data"] == []


def test_filters_and_cursor_paging(tenant: Tenant) -> None:
    made = [add(tenant, email=f"page{i}@paging.example") for i in range(5)]
    made.append(add(tenant, domain="spam.paging.example", reason="complaint"))
    made.append(add(tenant, email="bounced@other.example", reason="hard_bounce"))

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = tenant.client.get(URL, params=params).json()
        seen += [item["id"] for item in page["data"]]
        cursor = page["pagination"]["next_cursor"]
        assert page["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == [m["id"] for m in reversed(made)]

    def values(**params: Any) -> list[str]:
        response = tenant.client.get(URL, params=params)
        assert response.status_code == 200, response.text
        return [item["value"] for item in response.json()["data"]]

    assert values(kind="domain") == ["spam.paging.example"]
    assert values(reason="complaint,hard_bounce") == [
        "bounced@other.example",
        "spam.paging.example",
    ]
    assert values(reason=["manual"], q="PAGE3") == ["page3@paging.example"]
    assert values(q="100%_") == []  # LIKE wildcards are literal
    assert values(since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z") == []

    assert_error(tenant.client.get(URL, params={"kind": "ip"}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"reason": "bored"}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"cursor": "nonsense"}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"limit": 0}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"since": "yesterday"}), 400, "validation_error")


def test_a_duplicate_is_a_conflict_and_twins_racing_never_fail(tenant: Tenant) -> None:
    add(tenant, email="twice@example.com")
    again = assert_error(
        tenant.client.post(URL, json={"email": "TWICE@example.com"}), 409, "conflict"
    )
    assert "twice@example.com" in again["message"]

    # Twelve clients add one new value at once: one 201, the rest 409, never a 500.
    def attempt(_: int) -> int:
        with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
            response = client.post(
                URL,
                json={"domain": "race.example"},
                headers={"Authorization": f"Bearer {tenant.key}"},
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(attempt, range(12)))
    assert statuses == [201] + [409] * 11
    listed = tenant.client.get(URL, params={"q": "race.example"}).json()["data"]
    assert [item["value"] for item in listed] == ["race.example"]


def test_bad_input_is_a_clear_400_and_nothing_is_stored(tenant: Tenant) -> None:
    cases: list[tuple[Any, str]] = [
        ({}, "email"),
        ({"email": "a@example.com", "domain": "example.com"}, "email"),
        ({"email": "not an address"}, "email"),
        ({"email": "example.com"}, "email"),
        ({"domain": "a@example.com"}, "domain"),
        ({"domain": "192.0.2.1"}, "domain"),
        ({"domain": "bad_domain!.example"}, "domain"),
        ({"domain": "x" * 400 + ".example"}, "domain"),
        ({"email": "ok@example.com", "detail": "line\r\nX-Injected: yes"}, "detail"),
        ({"email": "ok@example.com", "detail": "x" * 1001}, "detail"),
        ({"email": "ok@example.com", "reason": "bored"}, "reason"),
        ({"email": "ok@example.com", "unknown": 1}, "unknown"),
        ({"email": 42}, "email"),
    ]
    for body, field in cases:
        error = assert_error(tenant.client.post(URL, json=body), 400, "validation_error")
        assert field in [e["field"] for e in error["errors"]], (body, error)
    bad_utf8 = tenant.client.post(
        URL, content=b'{"email": "\xff@example.com"}', headers={"Content-Type": "application/json"}
    )
    assert_error(bad_utf8, 400, "validation_error")
    assert tenant.client.get(URL).json()["data"] == []
    assert_error(tenant.client.get(f"{URL}/sup_999999999"), 404, "not_found")
    assert_error(tenant.client.get(f"{URL}/not a value"), 400, "validation_error")


def test_accounts_are_separate_and_permissions_hold(tenant: Tenant) -> None:
    entry = add(tenant, email="mine@example.com")
    with new_tenant(tenant.server) as other:
        assert_error(other.client.get(f"{URL}/{entry['id']}"), 404, "not_found")
        assert other.client.get(URL).json()["data"] == []
        assert suppressed(other, "mine@example.com") == set()
    reader = {"Authorization": f"Bearer {tenant.key_with('suppressions:read')}"}
    assert tenant.client.get(URL, headers=reader).status_code == 200
    refused = tenant.client.post(URL, json={"email": "x@example.com"}, headers=reader)
    assert_error(refused, 403, "forbidden")
    neither = {"Authorization": f"Bearer {tenant.key_with('messages:read')}"}
    assert_error(tenant.client.get(URL, headers=neither), 403, "forbidden")


def test_a_suppressed_domain_rejects_a_real_send(tenant: Tenant) -> None:
    add(tenant, domain="Gone.Example")
    body = {
        "api_key": tenant.key,
        "sender": "app@example.com",
        "to": ["Someone@gone.example", "kept@example.com"],
        "subject": "hello",
        "text_body": "hi",
    }
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        sent = client.post("/v3/email/send", content=json.dumps(body)).json()["data"]
    assert sent["succeeded"] == 1 and sent["failed"] == 1
    assert sent["failures"] == ["Someone@gone.example"]
    message = tenant.client.get(f"/api/v1/messages/{sent['email_id']}").json()["data"]
    statuses = {r["email"]: r["status"] for r in message["recipients"]}
    assert statuses == {"Someone@gone.example": "rejected", "kept@example.com": "queued"}
    rejects = tenant.client.get(
        "/api/v1/events", params={"message_id": sent["email_id"], "type": "reject"}
    ).json()["data"]
    assert [(e["type"], e["recipient"], e["detail"]) for e in rejects] == [
        ("reject", "Someone@gone.example", "suppressed")
    ]
