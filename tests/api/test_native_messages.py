"""Native /api/v1/messages: accept one message, read it back, list, filter, page, cancel,
raw MIME, suppressed recipients, idempotency and permissions. (No workers run in the test
server: accepted mail stays queued; delivery has its own tests.)"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.services import suppressions
from mailgate.store.models import Message, MessageContent

URL = "/api/v1/messages"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PDF = b"%PDF-1.4 not really a pdf"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"email": "sender@example.com", "name": "Sender"},
        "to": [{"email": "alice@example.com", "name": "Alice"}],
        "subject": "Hello",
        "text": "Hi Alice",
    }
    body.update(overrides)
    return body


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ok"] is True
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    data: dict[str, Any] = body["data"]
    return data


def send(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    return created(tenant.client.post(URL, json=message(**overrides)))


def get(tenant: Tenant, message_id: str) -> dict[str, Any]:
    response = tenant.client.get(f"{URL}/{message_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def listed(tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = tenant.client.get(URL, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(tenant: Tenant, **params: Any) -> list[str]:
    return [m["id"] for m in listed(tenant, limit=100, **params)["data"]]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def fields_of(error: dict[str, Any]) -> set[str]:
    return {e["field"] for e in error.get("errors", [])}


def stored_mime(server: LiveServer, public_id: str) -> EmailMessage:
    async def work(session: AsyncSession) -> bytes:
        query = (
            select(MessageContent.raw)
            .join(Message, Message.id == MessageContent.message_id)
            .where(Message.public_id == public_id)
        )
        return bytes((await session.execute(query)).scalar_one())

    raw = server.run(work)
    assert isinstance(raw, bytes)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def suppress(tenant: Tenant, address: str) -> None:
    async def work(session: AsyncSession) -> None:
        await suppressions.suppress(
            session=session,
            account_id=tenant.account_id,
            address=address,
            reason=suppressions.SuppressionReason.MANUAL,
        )
        await session.commit()

    tenant.server.run(work)


def future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


# --- one message ----------------------------------------------------------------------------------


def test_a_message_is_accepted_queued_and_read_back(tenant: Tenant) -> None:
    response = tenant.client.post(URL, json=message(), headers={"Content-Type": "application/json"})

    data = created(response)
    assert data["id"].startswith("msg_")
    assert data["status"] == "queued"
    assert data["from"] == {"email": "sender@example.com", "name": "Sender"}
    assert data["subject"] == "Hello"
    assert data["message_id"].startswith("<") and data["message_id"].endswith(">")
    assert data["recipients"] == [
        {
            "email": "alice@example.com",
            "type": "to",
            "status": "queued",
            "attempts": 0,
            "last_code": None,
            "last_reply": None,
            "updated_at": data["created_at"],
        }
    ]
    assert data["rejected"] == []
    assert data["send_at"] is None and data["provider_id"] is None
    assert data["created_at"].endswith("Z")

    found = get(tenant, data["id"])
    assert found["status"] == "queued"
    assert found["recipients"] == data["recipients"]
    assert found["message_id"] == data["message_id"]
    assert found["attempts"] == 0 and found["last_provider_id"] is None
    assert [e["type"] for e in found["events"]] == ["processed"]
    assert found["events"][0]["created_at"].endswith("Z")


def test_every_part_of_a_message_is_kept(tenant: Tenant) -> None:
    data = send(
        tenant,
        to=[{"email": "alice@example.com"}, {"email": "bob@example.com", "name": "Bob"}],
        cc=[{"email": "carol@example.com"}],
        bcc=[{"email": "dave@example.com"}],
        reply_to={"email": "replies@example.com", "name": "Replies"},
        subject="Quarterly report",
        text=None,
        html='<p>See the <b>report</b> <img src="cid:logo"></p>',
        headers={"X-Campaign": "q3", "List-Unsubscribe": "<https://example.com/u?x=1>"},
        attachments=[
            {"filename": "report.pdf", "content": b64(PDF), "content_type": "application/pdf"},
            {"filename": "logo.png", "content": b64(PNG), "content_id": "logo"},
        ],
        tags=["reports", "q3"],
        metadata={"customer": "42"},
    )

    assert [(r["email"], r["type"]) for r in data["recipients"]] == [
        ("alice@example.com", "to"),
        ("bob@example.com", "to"),
        ("carol@example.com", "cc"),
        ("dave@example.com", "bcc"),
    ]
    found = get(tenant, data["id"])
    assert found["tags"] == ["reports", "q3"]
    assert found["metadata"] == {"customer": "42"}
    assert found["size"] > len(PDF)

    mime = stored_mime(tenant.server, data["id"])
    assert "Bcc" not in mime and "dave@example.com" not in mime.as_string()
    assert mime["Reply-To"] == "Replies <replies@example.com>"
    assert mime["X-Campaign"] == "q3"
    assert mime["Message-ID"] == data["message_id"] and mime["Date"]
    plain = mime.get_body(("plain",))
    assert plain is not None and "report" in plain.get_content()  # derived from the HTML
    parts = {p.get_filename(): p for p in mime.iter_attachments()}
    assert parts["report.pdf"].get_content() == PDF
    inline = [p for p in mime.walk() if p["Content-ID"] == "<logo>"]
    assert len(inline) == 1 and inline[0].get_content() == PNG


def test_non_ascii_names_and_subjects_come_back_as_written(tenant: Tenant) -> None:
    data = send(
        tenant,
        **{"from": {"email": "sender@example.com", "name": "Zoë Ł. 山田"}},
        subject="Grüße — 月次レポート",
        text="Größe: 100 €",
    )

    found = get(tenant, data["id"])
    assert found["from"] == {"email": "sender@example.com", "name": "Zoë Ł. 山田"}
    assert found["subject"] == "Grüße — 月次レポート"
    mime = stored_mime(tenant.server, data["id"])
    assert str(mime["Subject"]) == "Grüße — 月次レポート"
    assert mime.get_body(("plain",)).get_content().strip() == "Größe: 100 €"  # type: ignore[union-attr]


# --- bad input: a 400 naming the field, and nothing stored --------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
        ({"headers": {"X-Note": "a\r\nBcc: victim@example.com"}}, "headers.X-Note"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name"),
        ({"headers": {"Subject": "again"}}, "headers.Subject"),
        ({"headers": {"Content-Type": "text/html"}}, "headers.Content-Type"),
        ({"to": [{"email": "not-an-address"}]}, "to.0.email"),
        ({"to": [{"email": "a@example.com\r\nRCPT TO:<x@y>"}]}, "to.0.email"),
        ({"cc": [{"email": "ok@example.com", "name": "Evil\r\nBcc: x@y"}]}, "cc.0.name"),
        ({"from": {"email": "nobody"}}, "from.email"),
        ({"to": []}, "to"),
        ({"to": None}, "to"),
        ({"text": None}, "text"),
        ({"to": [{"email": f"r{i}@example.com"} for i in range(101)]}, "to"),
        (
            {"attachments": [{"filename": "a.bin", "content": "not base64!"}]},
            "attachments.0.content",
        ),
        ({"attachments": [{"filename": "a.bin", "content": "QUJD="}]}, "attachments.0.content"),
        (
            {"attachments": [{"filename": "a", "content": "QUJD", "content_type": "nonsense"}]},
            "attachments.0.content_type",
        ),
        (
            {"attachments": [{"filename": "a", "content": "QUJD", "content_id": "a b"}]},
            "attachments.0.content_id",
        ),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"send_at": "2030-01-01T10:00:00"}, "send_at"),  # no time zone
        ({"send_at": future(days=31)}, "send_at"),
        ({"provider_id": "dprov_doesnotexist"}, "provider_id"),
        ({"provider_id": 987654321}, "provider_id"),
        ({"tags": ["a\nb"]}, "tags.0"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"to": "alice@example.com"}, "to"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    tenant: Tenant, overrides: dict[str, Any], field: str
) -> None:
    response = tenant.client.post(URL, json=message(**overrides))

    error = assert_error(response, 400, "validation_error")
    assert field in fields_of(error), error
    assert error["param"] in fields_of(error)
    assert ids(tenant) == []


def test_a_body_that_is_not_json_is_400(tenant: Tenant) -> None:
    for content in (b"{not json", b"\xff\xfe", b"[]"):
        response = tenant.client.post(
            URL, content=content, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "validation_error")
    assert ids(tenant) == []


@pytest.fixture(scope="module")
def small_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, tls_ca_bundle: Path
) -> Iterator[LiveServer]:
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("small"),
        tls_ca_bundle,
        message_max_bytes=20_000,
        max_request_bytes=200_000,
    )
    with serve(settings) as server:
        yield server


def test_a_message_over_the_size_limit_is_413(small_server: LiveServer) -> None:
    with new_tenant(small_server) as tenant:
        big = [{"filename": "big.bin", "content": b64(bytes(30_000))}]
        built = tenant.client.post(URL, json=message(attachments=big))
        raw = b"From: a@example.com\r\nTo: b@example.com\r\n\r\n" + b"x" * 30_000
        as_raw = tenant.client.post(f"{URL}/raw", json={"raw": b64(raw)})
        body = tenant.client.post(URL, json=message(text="x" * 300_000))

        assert_error(built, 413, "payload_too_large")
        assert fields_of(assert_error(as_raw, 413, "payload_too_large")) == {"raw"}
        assert_error(body, 413, "payload_too_large")
        assert ids(tenant) == []


# --- scheduling -----------------------------------------------------------------------------------


def test_send_at_in_the_future_schedules_and_in_the_past_sends_now(tenant: Tenant) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    scheduled = send(tenant, send_at=later.isoformat().replace("+00:00", "+00:00"))
    offset = send(tenant, send_at=(later + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    past = send(tenant, send_at="2020-01-01T00:00:00Z")

    assert scheduled["status"] == "scheduled"
    assert scheduled["send_at"] == later.isoformat().replace("+00:00", "Z")
    assert offset["send_at"] == later.isoformat().replace("+00:00", "Z")
    assert past["status"] == "queued" and past["send_at"] is None
    assert get(tenant, scheduled["id"])["status"] == "scheduled"


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_queued_and_scheduled_mail_then_409(tenant: Tenant) -> None:
    queued = send(tenant)
    scheduled = send(tenant, send_at=future(hours=5))

    for item in (queued, scheduled):
        response = tenant.client.post(f"{URL}/{item['id']}/cancel")
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["status"] == "cancelled"
        assert [r["status"] for r in data["recipients"]] == ["cancelled"]
        assert [e["type"] for e in data["events"]] == ["processed", "cancelled"]
        assert get(tenant, item["id"])["status"] == "cancelled"

    again = tenant.client.post(f"{URL}/{queued['id']}/cancel")
    error = assert_error(again, 409, "conflict")
    assert "cancelled" in error["message"]


def test_unknown_messages_are_404(tenant: Tenant, live_server: LiveServer) -> None:
    assert_error(tenant.client.get(f"{URL}/msg_000000000000000000000000"), 404, "not_found")
    assert_error(tenant.client.post(f"{URL}/msg_nope/cancel"), 404, "not_found")
    with new_tenant(live_server) as other:  # another account's message is not there either
        mine = send(tenant)
        assert_error(other.client.get(f"{URL}/{mine['id']}"), 404, "not_found")
        assert_error(other.client.post(f"{URL}/{mine['id']}/cancel"), 404, "not_found")
    assert get(tenant, mine["id"])["status"] == "queued"


# --- list, filters, cursor ------------------------------------------------------------------------


def test_list_newest_first_with_cursor_paging(tenant: Tenant) -> None:
    sent = [send(tenant, subject=f"n{i}")["id"] for i in range(5)]

    first = listed(tenant, limit=2)
    assert [m["id"] for m in first["data"]] == sent[::-1][:2]
    assert first["pagination"]["has_more"] is True
    second = listed(tenant, limit=2, cursor=first["pagination"]["next_cursor"])
    third = listed(tenant, limit=2, cursor=second["pagination"]["next_cursor"])
    assert [m["id"] for m in second["data"]] == sent[::-1][2:4]
    assert [m["id"] for m in third["data"]] == sent[:1]
    assert third["pagination"] == {"has_more": False, "next_cursor": None}
    item = first["data"][0]
    assert "recipients" not in item and "events" not in item
    assert item["subject"] == "n4" and item["status"] == "queued"


def test_list_filters(tenant: Tenant) -> None:
    plain = send(tenant)["id"]
    tagged = send(tenant, tags=["welcome"], to=[{"email": "zed@example.com"}])["id"]
    scheduled = send(tenant, send_at=future(days=1))["id"]
    cancelled = send(tenant)["id"]
    assert tenant.client.post(f"{URL}/{cancelled}/cancel").status_code == 200

    assert ids(tenant, status="scheduled") == [scheduled]
    assert ids(tenant, status="queued,cancelled") == [cancelled, tagged, plain]
    assert set(ids(tenant, status=["queued", "scheduled"])) == {scheduled, tagged, plain}
    assert ids(tenant, tag="welcome") == [tagged]
    assert ids(tenant, recipient="zed@example.com") == [tagged]
    assert ids(tenant, recipient="nobody@example.com") == []
    assert ids(tenant, since=future(hours=1)) == []
    assert len(ids(tenant, since="2020-01-01T00:00:00Z", until=future(hours=1))) == 4
    assert ids(tenant, until="2020-01-01") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"cursor": "garbage"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"recipient": "not an address"}, "recipient"),
    ],
)
def test_bad_list_queries_are_400(tenant: Tenant, params: dict[str, Any], field: str) -> None:
    error = assert_error(tenant.client.get(URL, params=params), 400, "validation_error")
    assert field in fields_of(error)


# --- batch ----------------------------------------------------------------------------------------


def test_a_batch_is_accepted_in_order(tenant: Tenant) -> None:
    batch = [message(subject=f"b{i}", to=[{"email": f"r{i}@example.com"}]) for i in range(3)]

    response = tenant.client.post(f"{URL}/batch", json={"messages": batch})

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert [m["subject"] for m in data] == ["b0", "b1", "b2"]
    assert [m["recipients"][0]["email"] for m in data] == [f"r{i}@example.com" for i in range(3)]
    assert sorted(ids(tenant)) == sorted(m["id"] for m in data)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"to": [{"email": "broken"}]}, "messages.1.to.0.email"),
        ({"headers": {"From": "x@example.com"}}, "messages.1.headers.From"),
        (
            {"attachments": [{"filename": "a", "content": "%%%"}]},
            "messages.1.attachments.0.content",
        ),
        ({"provider_id": "dprov_missing"}, "messages.1.provider_id"),
        ({"send_at": future(days=90)}, "messages.1.send_at"),
    ],
)
def test_one_bad_message_and_the_batch_stores_nothing(
    tenant: Tenant, bad: dict[str, Any], field: str
) -> None:
    batch = [message(), message(**bad), message()]

    response = tenant.client.post(f"{URL}/batch", json={"messages": batch})

    error = assert_error(response, 400, "validation_error")
    assert fields_of(error) == {field}
    assert ids(tenant) == []


def test_every_bad_message_of_a_batch_is_named(tenant: Tenant) -> None:
    batch = [message(to=[{"email": "x"}]), message(), message(subject="a\nb")]

    response = tenant.client.post(f"{URL}/batch", json={"messages": batch})

    error = assert_error(response, 400, "validation_error")
    assert fields_of(error) == {"messages.0.to.0.email", "messages.2.subject"}
    assert ids(tenant) == []


def test_batch_limits(tenant: Tenant) -> None:
    empty = tenant.client.post(f"{URL}/batch", json={"messages": []})
    too_many = tenant.client.post(f"{URL}/batch", json={"messages": [message()] * 501})

    assert "messages" in fields_of(assert_error(empty, 400, "validation_error"))
    assert "messages" in fields_of(assert_error(too_many, 400, "validation_error"))
    assert ids(tenant) == []


# --- raw MIME -------------------------------------------------------------------------------------

RAW = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: Alice <alice@example.com>, bob@example.com\r\n"
    b"Cc: carol@example.com\r\n"
    b"Bcc: hidden@example.com\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Body line\r\n"
)


def test_raw_mime_as_base64_json(tenant: Tenant) -> None:
    data = created(
        tenant.client.post(
            f"{URL}/raw", json={"raw": b64(RAW), "tags": ["raw"], "metadata": {"k": "v"}}
        )
    )

    assert data["subject"] == "Grüße"
    assert data["from"] == {"email": "sender@example.com", "name": "Sender"}
    assert [(r["email"], r["type"]) for r in data["recipients"]] == [
        ("alice@example.com", "to"),
        ("bob@example.com", "to"),
        ("carol@example.com", "cc"),
        ("hidden@example.com", "bcc"),
    ]
    assert data["tags"] == ["raw"] and data["metadata"] == {"k": "v"}
    mime = stored_mime(tenant.server, data["id"])
    assert "Bcc" not in mime and b"hidden@example.com" not in mime.as_bytes()
    assert mime["Message-ID"] == data["message_id"] and mime["Date"]


def test_raw_mime_as_message_rfc822(tenant: Tenant) -> None:
    response = tenant.client.post(
        f"{URL}/raw",
        content=RAW,
        params={"tag": ["a", "b"], "send_at": future(days=1)},
        headers={"Content-Type": "message/rfc822"},
    )

    data = created(response)
    assert data["tags"] == ["a", "b"]
    assert data["status"] == "scheduled"
    assert get(tenant, data["id"])["recipients"][3]["email"] == "hidden@example.com"


@pytest.mark.parametrize(
    "payload",
    [
        {"raw": "not base64 at all"},
        {"raw": b64(b"To: a@example.com\r\n\r\nno sender\r\n")},
        {"raw": b64(b"From: a@example.com\r\n\r\nno recipients\r\n")},
        {"raw": b64(b"From: a@example.com\r\nTo: b@example.com\rBcc: c@x.com\r\n\r\nx")},
        {"raw": b64(b"From: a@example.com\r\nTo: b@example.com\r\nno colon here\r\n\r\nx")},
        {"raw": b64(RAW), "send_at": "soon"},
    ],
)
def test_bad_raw_messages_are_400(tenant: Tenant, payload: dict[str, Any]) -> None:
    response = tenant.client.post(f"{URL}/raw", json=payload)

    error = assert_error(response, 400, "validation_error")
    assert fields_of(error) <= {"raw", "send_at"} and fields_of(error)
    assert ids(tenant) == []


def test_raw_bodies_that_are_not_json_or_lack_raw_are_400(tenant: Tenant) -> None:
    for content in (b"{oops", b"", b"{}", b'{"raw": 5}'):
        response = tenant.client.post(
            f"{URL}/raw", content=content, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "validation_error")
    assert ids(tenant) == []


# --- suppressions, providers ----------------------------------------------------------------------


def test_suppressed_recipients_are_rejected_at_accept_time(tenant: Tenant) -> None:
    suppress(tenant, "blocked@example.com")
    suppress(tenant, "blocked.example.org")  # a whole domain

    data = send(
        tenant,
        to=[{"email": "alice@example.com"}, {"email": "Blocked@example.com"}],
        cc=[{"email": "anyone@blocked.example.org"}],
    )
    all_refused = send(tenant, to=[{"email": "blocked@example.com"}])

    assert data["status"] == "queued"
    assert data["rejected"] == ["Blocked@example.com", "anyone@blocked.example.org"]
    statuses = {r["email"]: r["status"] for r in get(tenant, data["id"])["recipients"]}
    assert statuses == {
        "alice@example.com": "queued",
        "Blocked@example.com": "rejected",
        "anyone@blocked.example.org": "rejected",
    }
    found = get(tenant, all_refused["id"])
    assert found["status"] == "rejected" and found["rejected"] == ["blocked@example.com"]
    assert [(e["type"], e["recipient"]) for e in found["events"]] == [
        ("reject", "blocked@example.com"),
        ("processed", None),
    ]


def test_an_explicit_provider_is_kept(tenant: Tenant) -> None:
    response = tenant.client.post(
        "/api/v1/providers",
        json={
            "name": "Upstream",
            "smtp_host": "smtp.example.com",
            "smtp_port": 587,
            "smtp_protocol": "starttls",
            "smtp_username": "u",
            "smtp_password": "p",
        },
    )
    provider = response.json()["data"]["id"]

    data = send(tenant, provider_id=provider)

    assert data["provider_id"] == provider
    assert get(tenant, data["id"])["provider_id"] == provider


# --- idempotency, permissions ---------------------------------------------------------------------


def test_an_idempotency_key_replays_the_first_answer(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "send-0001"}
    first = tenant.client.post(URL, json=message(), headers=headers)
    replay = tenant.client.post(URL, json=message(), headers=headers)
    other = tenant.client.post(URL, json=message(subject="Other"), headers=headers)
    batch = tenant.client.post(f"{URL}/batch", json={"messages": [message()]}, headers=headers)

    assert replay.status_code == 201
    assert replay.json() == first.json()  # the first answer, request id included
    assert replay.headers["idempotent-replayed"] == "true"
    assert_error(other, 409, "idempotency_conflict")
    assert created(batch)  # another endpoint: the key is fresh there
    assert len(ids(tenant)) == 2


def test_twins_with_one_idempotency_key_send_once(tenant: Tenant) -> None:
    """Requests with one key racing each other: one is sent; the others get its answer, or
    are told it is still running. Never two messages."""
    headers = {
        "Authorization": f"Bearer {tenant.key}",
        "Idempotency-Key": "race-0001",
    }

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=tenant.server.base_url) as client:
            return await asyncio.gather(
                *(client.post(URL, json=message(), headers=headers) for _ in range(12))
            )

    responses = asyncio.run(race())

    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "idempotency_conflict")
    sent = {r.json()["data"]["id"] for r in responses if r.status_code == 201}
    assert len(sent) == 1
    assert ids(tenant) == list(sent)
    # once answered, every retry is the replay
    replay = tenant.client.post(URL, json=message(), headers={"Idempotency-Key": "race-0001"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["data"]["id"] in sent


def test_a_refused_write_gives_its_idempotency_key_back(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "fix-and-retry"}
    refused = tenant.client.post(
        URL, json=message(to=[{"email": "not an address"}]), headers=headers
    )
    fixed = tenant.client.post(URL, json=message(), headers=headers)

    assert_error(refused, 400, "validation_error")
    assert created(fixed)
    assert len(ids(tenant)) == 1


def test_permissions(tenant: Tenant) -> None:
    sent = send(tenant)
    reader = {"Authorization": f"Bearer {tenant.key_with('messages:read')}"}
    sender = {"Authorization": f"Bearer {tenant.key_with('messages:send')}"}

    assert_error(tenant.client.post(URL, json=message(), headers=reader), 403, "forbidden")
    assert_error(
        tenant.client.post(f"{URL}/batch", json={"messages": [message()]}, headers=reader),
        403,
        "forbidden",
    )
    assert_error(
        tenant.client.post(f"{URL}/raw", json={"raw": b64(RAW)}, headers=reader), 403, "forbidden"
    )
    assert_error(tenant.client.post(f"{URL}/{sent['id']}/cancel", headers=reader), 403, "forbidden")
    assert_error(tenant.client.get(URL, headers=sender), 403, "forbidden")
    assert_error(tenant.client.get(f"{URL}/{sent['id']}", headers=sender), 403, "forbidden")
    assert tenant.client.get(URL, headers=reader).status_code == 200
    assert tenant.client.post(URL, json=message(), headers=sender).status_code == 201
    assert len(ids(tenant)) == 2


def test_no_key_is_401(live_server: LiveServer) -> None:
    response = httpx.post(live_server.base_url + URL, json=message())

    assert_error(response, 401, "unauthorized")
