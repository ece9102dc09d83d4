"""Events, activity search, the archive and retention on mail really sent: the API accepts,
the in-process worker delivers to a real upstream that accepts, bounces (550) and defers
(451), and then every read surface is checked against what happened."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.services.retention import purge_expired
from mailgate.store.db import Database
from mailgate.store.models import Message, MessageContent, utcnow
from smtp_servers import SmtpServer

PDF = b"%PDF-1.4\n% binary \xff\xfe\x00\x01\n%%EOF\n"
LONG_AGO = "2000-01-01"


@dataclass
class Sent:
    server: LiveServer
    tenant: Tenant
    upstream: SmtpServer
    welcome: str  # to ok@ and reject-me@, tagged "welcome": partial
    invoice: str  # via /v3/email/send with an attachment: delivered
    waiting: str  # to defer-me@: deferred, still in the queue


def smtp2go(tenant: Tenant, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    with httpx.Client(base_url=tenant.server.base_url, timeout=30) as client:
        return client.post(path, content=json.dumps({"api_key": tenant.key, **(body or {})}))


def data_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def smtp2go_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    data: dict[str, Any] = data_of(response, status)
    assert data["error_code"] == f"E_ApiResponseCodes.{code}" and data["error"], data
    return data


def wait_for(tenant: Tenant, public_id: str, done: Any, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        data: dict[str, Any] = tenant.client.get(f"/api/v1/messages/{public_id}").json()["data"]
        if done(data):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def with_database(url: str, work: Any) -> Any:
    async def go() -> Any:
        database = Database(url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


@pytest.fixture
def sent(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> Iterator[Sent]:
    settings = make_settings(
        fresh_database_url,
        tmp_path,
        tls_ca_bundle,
        run_workers=True,
        archive_retention_days=30,
        archive_purge_interval_seconds=0.1,
    )
    with serve(settings) as server, new_tenant(server) as tenant:
        created = tenant.client.post(
            "/api/v1/providers",
            json={
                "name": "sink",
                "smtp_host": smtp_rejecting.host,
                "smtp_port": smtp_rejecting.port,
                "smtp_protocol": "none",
                "smtp_username": "unused",
                "smtp_password": "unused",
                "smtp_auth_method": "none",
            },
        )
        assert created.status_code == 201, created.text
        welcome = tenant.client.post(
            "/api/v1/messages",
            json={
                "from": {"email": "team@example.com", "name": "Team"},
                "to": [{"email": "ok@example.com"}, {"email": "reject-me@example.com"}],
                "subject": "Welcome aboard",
                "text": "Hello!",
                "tags": ["welcome"],
            },
        )
        assert welcome.status_code == 201, welcome.text
        invoice = data_of(
            smtp2go(
                tenant,
                "/v3/email/send",
                {
                    "sender": "Billing <billing@example.com>",
                    "to": ["payer@example.com"],
                    "subject": "Invoice 42",
                    "text_body": "See attached.",
                    "attachments": [
                        {
                            "filename": "invoice.pdf",
                            "mimetype": "application/pdf",
                            "fileblob": base64.b64encode(PDF).decode(),
                        }
                    ],
                },
            )
        )
        waiting = tenant.client.post(
            "/api/v1/messages",
            json={
                "from": {"email": "team@example.com"},
                "to": [{"email": "defer-me@example.com"}],
                "subject": "Try later",
                "text": "...",
            },
        )
        ids = Sent(
            server,
            tenant,
            smtp_rejecting,
            welcome.json()["data"]["id"],
            invoice["email_id"],
            waiting.json()["data"]["id"],
        )
        finished = ("delivered", "partial", "bounced", "failed", "deferred")
        assert wait_for(tenant, ids.welcome, lambda d: d["status"] in finished)["status"] == (
            "partial"
        )
        assert wait_for(tenant, ids.invoice, lambda d: d["status"] in finished)["status"] == (
            "delivered"
        )
        assert wait_for(tenant, ids.waiting, lambda d: d["status"] in finished)["status"] == (
            "deferred"
        )
        yield ids


def events(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = tenant.client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def activity(tenant: Tenant, **body: Any) -> dict[str, Any]:
    found: dict[str, Any] = data_of(
        smtp2go(tenant, "/v3/activity/search", {"start_date": LONG_AGO, **body})
    )
    return found


def test_native_events_filters_and_paging(sent: Sent) -> None:
    tenant = sent.tenant
    of_welcome = events(tenant, message_id=sent.welcome)
    assert {(e["type"], e["recipient"]) for e in of_welcome} >= {
        ("processed", None),
        ("delivered", "ok@example.com"),
        ("bounce", "reject-me@example.com"),
    }
    [bounce] = [e for e in of_welcome if e["type"] == "bounce"]
    assert set(bounce) == {
        "id",
        "type",
        "message_id",
        "recipient",
        "provider_id",
        "smtp_code",
        "detail",
        "bounce_class",
        "created_at",
    }
    assert bounce["smtp_code"] == 550 and bounce["bounce_class"] == "hard"
    assert bounce["message_id"] == sent.welcome and bounce["provider_id"].startswith("dprov_")
    assert bounce["id"].startswith("evt_")

    everything = events(tenant, limit=100)
    assert len(everything) == 7
    assert [e["id"] for e in everything] == sorted(
        (e["id"] for e in everything), key=lambda i: int(i[4:]), reverse=True
    )
    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = tenant.client.get("/api/v1/events", params=params).json()
        paged += [e["id"] for e in page["data"]]
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert paged == [e["id"] for e in everything]

    assert [e["recipient"] for e in events(tenant, type="bounce")] == ["reject-me@example.com"]
    deferred = events(tenant, type=["deferred", "bounce"])
    assert {e["recipient"] for e in deferred} == {"defer-me@example.com", "reject-me@example.com"}
    assert {e["type"] for e in events(tenant, recipient="ok@example.com")} == {"delivered"}
    assert events(tenant, since="2999-01-01T00:00:00Z") == []
    assert events(tenant, until="2000-01-01T00:00:00Z") == []
    assert events(tenant, message_id="msg_unknown") == []
    for bad in ({"type": "exploded"}, {"cursor": "zz"}, {"recipient": "no"}, {"limit": 101}):
        response = tenant.client.get("/api/v1/events", params=bad)
        assert response.status_code == 400 and response.json()["error"]["code"] == (
            "validation_error"
        )
    with new_tenant(sent.server) as other:
        assert events(other) == []
    forbidden = tenant.client.get(
        "/api/v1/events", headers={"Authorization": f"Bearer {tenant.key_with('messages:read')}"}
    )
    assert forbidden.status_code == 403


def test_activity_search_filters_shapes_and_continuation(sent: Sent) -> None:
    tenant = sent.tenant
    hard = activity(tenant, event_types=["hard-bounced"])
    assert hard["total_events"] == 1 and hard["continue_token"] is None
    [event] = hard["events"]
    assert event["event"] == "hard-bounced" and event["email_id"] == sent.welcome
    assert event["recipient"] == "reject-me@example.com"
    assert event["smtp_response"].startswith("550")
    assert event["sender"] == "team@example.com" and event["subject"] == "Welcome aboard"
    assert event["to"] == "ok@example.com, reject-me@example.com"
    assert event["date"].endswith("Z")

    delivered = activity(tenant, event_types=["delivered"])
    assert {e["recipient"] for e in delivered["events"]} == {
        "ok@example.com",
        "payer@example.com",
    }
    assert {e["email_id"] for e in activity(tenant, search_subject="INVOICE")["events"]} == {
        sent.invoice
    }
    assert {e["email_id"] for e in activity(tenant, search_sender="billing@")["events"]} == {
        sent.invoice
    }
    assert {e["email_id"] for e in activity(tenant, tags=["welcome"])["events"]} == {sent.welcome}
    assert {e["email_id"] for e in activity(tenant, search_email_id=sent.waiting)["events"]} == {
        sent.waiting
    }
    assert {e["recipient"] for e in activity(tenant, search_recipient="defer")["events"]} == {
        "defer-me@example.com"
    }
    either = activity(tenant, search="Invoice | Try later")
    assert {e["email_id"] for e in either["events"]} == {sent.invoice, sent.waiting}
    assert activity(tenant, event_types=["resubscribed"])["events"] == []
    assert activity(tenant, start_date="2999-01-01")["total_events"] == 0
    # Without start_date: today (UTC) on, as SMTP2GO's default.
    assert data_of(smtp2go(tenant, "/v3/activity/search"))["total_events"] == 7

    everything = activity(tenant, limit=1000)
    total = everything["total_events"]
    assert total == len(everything["events"]) == 7
    walked: list[tuple[str, str]] = []
    token = None
    while True:
        page = activity(tenant, limit=3, **({"continue_token": token} if token else {}))
        assert page["total_events"] == total
        walked += [(e["email_id"], e["event"]) for e in page["events"]]
        token = page["continue_token"]
        if token is None:
            break
    assert walked == [(e["email_id"], e["event"]) for e in everything["events"]]

    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"event_types": ["exploded"]}, "event_types"),
        ({"only_latest": True}, "only_latest"),
        ({"start_date": "someday"}, "start_date"),
        ({"continue_token": "garbage"}, "continue_token"),
        ({"surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        error = smtp2go_error(
            smtp2go(tenant, "/v3/activity/search", body), 400, "NON_VALIDATING_IN_PAYLOAD"
        )
        assert error["field_validation_errors"]["fieldname"] == field, error


def test_archive_view_search_and_raw_download(sent: Sent) -> None:
    tenant = sent.tenant
    found = data_of(smtp2go(sent.tenant, "/v3/archive/search"))
    assert found["email_count"] == 3 and found["continue_token"] is None
    assert [e["email_id"] for e in found["emails"]] == [sent.waiting, sent.invoice, sent.welcome]
    only = data_of(smtp2go(tenant, "/v3/archive/search", {"subject": "invoice"}))
    assert [e["email_id"] for e in only["emails"]] == [sent.invoice]
    first = data_of(smtp2go(tenant, "/v3/archive/search", {"limit": 1}))
    second = data_of(
        smtp2go(
            tenant, "/v3/archive/search", {"limit": 1, "continue_token": first["continue_token"]}
        )
    )
    assert [e["email_id"] for e in first["emails"] + second["emails"]] == [
        sent.waiting,
        sent.invoice,
    ]

    for path in ("/v3/archive/view", "/v3/archive/email"):
        view = data_of(smtp2go(tenant, path, {"email_id": sent.invoice}))
        assert view["email_id"] == sent.invoice and view["subject"] == "Invoice 42"
        assert view["attachment_count"] == 1
        assert view["attachments"] == [{"filename": "invoice.pdf"}]
        assert view["sender"] == "billing@example.com" and view["to"] == "payer@example.com"
        assert "Subject: Invoice 42" in view["headers"]
        assert view["url"].endswith(f"/api/v1/messages/{sent.invoice}/raw")

    raw = tenant.client.get(view["url"])
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    assert f'filename="{sent.invoice}.eml"' in raw.headers["content-disposition"]

    async def stored(database: Database) -> bytes:
        async with database.session() as session:
            message_id = await session.scalar(
                select(Message.id).where(Message.public_id == sent.invoice)
            )
            content = await session.scalar(
                select(MessageContent.raw).where(MessageContent.message_id == message_id)
            )
            return bytes(content or b"")

    assert raw.content == with_database(sent.server.database_url, stored)
    parsed = email.message_from_bytes(raw.content, policy=email.policy.default)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content() == PDF
    [delivered] = [m for m in sent.upstream.messages if m.parsed["Subject"] == "Invoice 42"]
    assert delivered.parsed["Message-ID"] == parsed["Message-ID"]

    missing = smtp2go_error(
        smtp2go(tenant, "/v3/archive/view", {"email_id": "msg_nope"}), 404, "NOT_FOUND"
    )
    assert "msg_nope" in missing["error"]
    smtp2go_error(smtp2go(tenant, "/v3/archive/view", {}), 400, "NON_VALIDATING_IN_PAYLOAD")
    smtp2go_error(
        smtp2go(tenant, "/v3/archive/search", {"headers": "X-Foo"}),
        400,
        "NON_VALIDATING_IN_PAYLOAD",
    )
    assert tenant.client.get("/api/v1/messages/msg_nope/raw").status_code == 404
    with new_tenant(sent.server) as other:
        assert other.client.get(f"/api/v1/messages/{sent.invoice}/raw").status_code == 404


def test_retention_purges_finished_bodies_and_keeps_queued_ones(sent: Sent) -> None:
    tenant, url = sent.tenant, sent.server.database_url

    # The node's own purger (every 0.1 s here) takes a finished message past 30 days.
    async def age(database: Database) -> None:
        async with database.session() as session:
            await session.execute(
                update(Message)
                .where(Message.public_id.in_([sent.welcome, sent.waiting]))
                .values(created_at=utcnow() - timedelta(days=31))
            )
            await session.commit()

    with_database(url, age)
    purged = wait_for(tenant, sent.welcome, lambda d: d["content_purged_at"] is not None)
    assert purged["status"] == "partial"  # the metadata stays
    assert wait_for(tenant, sent.waiting, lambda d: True)["content_purged_at"] is None

    # A pass by hand, as `mailgate purge` runs it, 31 days from now: the rest of the
    # finished mail goes too; the deferred message keeps its body.
    async def purge(database: Database) -> int:
        return await purge_expired(
            database=database,
            retention_days=30,
            batch_size=1,
            now=utcnow() + timedelta(days=31),
        )

    assert with_database(url, purge) == 1
    assert tenant.client.get(f"/api/v1/messages/{sent.invoice}").json()["data"]["content_purged_at"]
    for gone in (sent.welcome, sent.invoice):
        response = tenant.client.get(f"/api/v1/messages/{gone}/raw")
        assert response.status_code == 410, response.text
        error = response.json()["error"]
        assert error["code"] == "not_found" and "retention" in error["message"]
        smtp2go_error(smtp2go(tenant, "/v3/archive/view", {"email_id": gone}), 404, "NOT_FOUND")
    assert tenant.client.get(f"/api/v1/messages/{sent.waiting}/raw").status_code == 200
    found = data_of(smtp2go(tenant, "/v3/archive/search"))
    assert [e["email_id"] for e in found["emails"]] == [sent.waiting]
    # Events and activity are metadata: still all there.
    assert {e["type"] for e in events(tenant, message_id=sent.welcome)} >= {"processed", "bounce"}
    assert with_database(url, purge) == 0


def test_activity_search_allows_60_a_minute_per_key(live_server: LiveServer) -> None:
    with new_tenant(live_server) as tenant, new_tenant(live_server) as neighbour:
        for _ in range(60):
            ok = smtp2go(tenant, "/v3/activity/search")
            assert ok.status_code == 200, ok.text
        assert int(ok.headers["x-ratelimit-limit"]) == 60
        assert ok.headers["x-ratelimit-remaining"] == "0"
        refused = smtp2go(tenant, "/v3/activity/search")
        error = smtp2go_error(refused, 429, "RATE_LIMIT_EXCEEDED")
        assert "Retry" in error["error"] or "retry" in error["error"]
        assert int(refused.headers["retry-after"]) >= 1
        # Other endpoints, and other keys, are not held back by it.
        assert smtp2go(tenant, "/v3/suppression/view").status_code == 200
        assert smtp2go(neighbour, "/v3/activity/search").status_code == 200
