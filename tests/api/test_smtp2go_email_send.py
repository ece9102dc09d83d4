"""SMTP2GO ``/v3/email/send`` and ``/v3/email/mime``: the document's examples as printed, the
official clients' ways (Python: every key, nulls, no Content-Type; Node: ``Name <a@b>``,
``<a@b>``, inlines without ``cid``), the limits, bad input, suppressed recipients."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import uuid
from collections.abc import Iterator
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

SEND = "/v3/email/send"
MIME = "/v3/email/mime"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(48))
PDF = b"%PDF-1.4 not really a pdf"

# The document's request for /email/send, exactly as printed.
SPEC_SEND: dict[str, Any] = {
    "sender": "noreply@example.com",
    "to": ["recipient@example.com"],
    "subject": "Subject line",
    "html_body": "<h1>HTML content</h1>",
    "text_body": "Plain text content",
    "cc": ["cc@example.com"],
    "bcc": ["bcc@example.com"],
    "reply_to": "reply@example.com",
    "custom_headers": [{"header": "X-Custom", "value": "value"}],
    "attachments": [
        {
            "filename": "file.pdf",
            "mimetype": "application/pdf",
            "fileblob": "base64-encoded-content",
        }
    ],
    "inlines": [
        {
            "filename": "logo.png",
            "mimetype": "image/png",
            "fileblob": "base64-encoded-content",
            "cid": "logo-cid",
        }
    ],
    "template_id": "template-uuid",
    "template_data": {"variable1": "value1"},
    "subaccount_id": "subaccount-uuid",
}
SPEC_MIME = {"mime_email": "MIME-encoded-string"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"request_id", "data"}
    uuid.UUID(body["request_id"])
    data: dict[str, Any] = body["data"]
    return data


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    data = data_of(response, status)
    assert data["error_code"] == f"E_ApiResponseCodes.{code}"
    assert isinstance(data["error"], str) and data["error"]
    return data


def invalid_fields(response: httpx.Response) -> set[str]:
    data = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
    errors = data["field_validation_errors"]
    assert errors["fieldname"] == errors["errors"][0]["fieldname"]
    return {e["fieldname"] for e in errors["errors"]}


def header_key(tenant: Tenant) -> dict[str, str]:
    return {"X-Smtp2go-Api-Key": tenant.key, "Content-Type": "application/json"}


def python_client_post(
    server: LiveServer, path: str, api_key: str, payload: dict[str, Any]
) -> httpx.Response:
    """As the official Python client posts: JSON bytes, the key inside, no Content-Type."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        request = client.build_request(
            "POST",
            path,
            content=json.dumps({"api_key": api_key, **payload}),
            headers={"X-Smtp2go-Api": "smtp2go-python", "X-Smtp2go-Api-Version": "2.3.1"},
        )
        assert "content-type" not in request.headers
        return client.send(request)


def sent_ids(tenant: Tenant) -> list[str]:
    response = tenant.client.get("/api/v1/messages", params={"limit": 100})
    assert response.status_code == 200
    return [m["id"] for m in response.json()["data"]]


def native(tenant: Tenant, email_id: str) -> dict[str, Any]:
    response = tenant.client.get(f"/api/v1/messages/{email_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


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
            reason=suppressions.SuppressionReason.HARD_BOUNCE,
        )
        await session.commit()

    tenant.server.run(work)


def spec_send_that_can_succeed() -> dict[str, Any]:
    """The document's example with real base64, and without what Mailgate cannot do yet."""
    body = json.loads(json.dumps(SPEC_SEND))
    body["attachments"][0]["fileblob"] = b64(PDF)
    body["inlines"][0]["fileblob"] = b64(PNG)
    for unsupported in ("template_id", "template_data", "subaccount_id"):
        del body[unsupported]
    return body


# --- the document's examples ----------------------------------------------------------------------


def test_the_documents_send_example_as_printed_is_refused_field_by_field(tenant: Tenant) -> None:
    # As printed it asks for a template and a subaccount and its fileblobs are placeholders.
    with_header = tenant.client.post(SEND, json=SPEC_SEND, headers=header_key(tenant))
    in_body = python_client_post(tenant.server, SEND, tenant.key, SPEC_SEND)

    for response in (with_header, in_body):
        assert invalid_fields(response) == {
            "template_id",
            "subaccount_id",
            "attachments.0.fileblob",
            "inlines.0.fileblob",
        }
    assert sent_ids(tenant) == []


def test_the_documents_send_example_with_real_files_is_sent(tenant: Tenant) -> None:
    response = tenant.client.post(
        SEND, json=spec_send_that_can_succeed(), headers=header_key(tenant)
    )

    data = data_of(response)
    assert set(data) == {"succeeded", "failed", "failures", "email_id"}
    assert (data["succeeded"], data["failed"], data["failures"]) == (3, 0, [])
    found = native(tenant, data["email_id"])
    assert found["status"] == "queued"
    assert [(r["email"], r["type"]) for r in found["recipients"]] == [
        ("recipient@example.com", "to"),
        ("cc@example.com", "cc"),
        ("bcc@example.com", "bcc"),
    ]
    mime = stored_mime(tenant.server, data["email_id"])
    assert mime["From"] == "noreply@example.com"
    assert mime["Reply-To"] == "reply@example.com"
    assert mime["X-Custom"] == "value"
    assert mime["Subject"] == "Subject line"
    assert "Bcc" not in mime and "bcc@example.com" not in mime.as_string()
    assert {p.get_filename(): p.get_content() for p in mime.iter_attachments()} == {"file.pdf": PDF}
    inline = [p for p in mime.walk() if p["Content-ID"] == "<logo-cid>"]
    assert len(inline) == 1 and inline[0].get_content() == PNG


def test_the_documents_send_example_from_the_python_client(tenant: Tenant) -> None:
    response = python_client_post(tenant.server, SEND, tenant.key, spec_send_that_can_succeed())

    data = data_of(response)
    assert data["succeeded"] == 3
    assert sent_ids(tenant) == [data["email_id"]]


def test_the_documents_mime_example_as_printed_is_400(tenant: Tenant) -> None:
    with_header = tenant.client.post(MIME, json=SPEC_MIME, headers=header_key(tenant))
    in_body = python_client_post(tenant.server, MIME, tenant.key, SPEC_MIME)

    for response in (with_header, in_body):
        assert invalid_fields(response) == {"mime_email"}
    assert sent_ids(tenant) == []


# --- the official clients -------------------------------------------------------------------------


def test_the_python_client_sends_every_key_with_nulls(tenant: Tenant) -> None:
    payload = {
        "sender": "goofy@clubhouse.com",
        "to": ["mickey@clubhouse.com"],
        "subject": "Trying out SMTP2Go",
        "text_body": "Test message",
        "html_body": None,
        "template_id": None,
        "template_data": None,
        "custom_headers": None,
    }

    data = data_of(python_client_post(tenant.server, SEND, tenant.key, payload))

    assert data["succeeded"] == 1 and data["failures"] == []
    mime = stored_mime(tenant.server, data["email_id"])
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content().strip() == "Test message"


def test_the_node_client_address_forms_and_inlines_without_cid(tenant: Tenant) -> None:
    payload = {
        "api_key": tenant.key,
        "html_body": '<h1>Hi <img src="cid:logo.png"></h1>',
        "to": ["Jane Jones <jane@example.com>", "<bare@example.com>"],
        "cc": ['"Doe, John" <john@example.com>'],
        "sender": "John Smith <john.smith@example.com>",
        "subject": "Node",
        "inlines": [{"filename": "logo.png", "fileblob": b64(PNG), "mimetype": "image/png"}],
        "attachments": [
            {"filename": "notes.txt", "fileblob": b64(b"notes")},
            # mime-types' lookup() gives false for an unknown extension; the client sends it.
            {"filename": "data.zzqx", "fileblob": b64(b"?"), "mimetype": False},
        ],
    }

    data = data_of(tenant.client.post(SEND, content=json.dumps(payload)))

    assert data["succeeded"] == 3
    found = native(tenant, data["email_id"])
    assert found["from"] == {"email": "john.smith@example.com", "name": "John Smith"}
    assert [r["email"] for r in found["recipients"]] == [
        "jane@example.com",
        "bare@example.com",
        "john@example.com",
    ]
    mime = stored_mime(tenant.server, data["email_id"])
    assert mime["To"].addresses[0].display_name == "Jane Jones"
    assert mime["Cc"].addresses[0].display_name == "Doe, John"
    inline = [p for p in mime.walk() if p["Content-ID"] == "<logo.png>"]
    assert len(inline) == 1 and inline[0].get_content() == PNG
    types = {p.get_filename(): p.get_content_type() for p in mime.iter_attachments()}
    assert types == {"notes.txt": "text/plain", "data.zzqx": "application/octet-stream"}


def test_reply_to_as_a_custom_header_like_smtp2gos_own_example(tenant: Tenant) -> None:
    payload = {
        "sender": "a@example.com",
        "to": ["b@example.com"],
        "text_body": "x",
        "custom_headers": [{"header": "Reply-To", "value": "Help Desk <help@example.com>"}],
    }

    data = data_of(tenant.client.post(SEND, json=payload))

    assert stored_mime(tenant.server, data["email_id"])["Reply-To"] == (
        "Help Desk <help@example.com>"
    )


def test_non_ascii_sender_names_and_subjects(tenant: Tenant) -> None:
    payload = {
        "sender": "山田 太郎 <taro@example.com>",
        "to": ["Zoë <zoe@example.com>"],
        "subject": "お知らせ — Grüße",
        "text_body": "本文",
    }

    data = data_of(tenant.client.post(SEND, json=payload))

    found = native(tenant, data["email_id"])
    assert found["from"]["name"] == "山田 太郎"
    assert found["subject"] == "お知らせ — Grüße"
    assert str(stored_mime(tenant.server, data["email_id"])["Subject"]) == "お知らせ — Grüße"


# --- limits and bad input: 400, nothing stored ----------------------------------------------------


def base(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sender": "a@example.com", "to": ["b@example.com"], "text_body": "x"}
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"to": [f"r{i}@example.com" for i in range(101)]}, {"to"}),
        ({"cc": [f"r{i}@example.com" for i in range(101)]}, {"cc"}),
        ({"bcc": [f"r{i}@example.com" for i in range(101)]}, {"bcc"}),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, {"subject"}),
        (
            {"custom_headers": [{"header": "X-A", "value": "v\r\nBcc: victim@example.com"}]},
            {"custom_headers.0.value"},
        ),
        ({"custom_headers": [{"header": "X:A", "value": "v"}]}, {"custom_headers.0"}),
        ({"custom_headers": [{"header": "X-A\r\nBcc", "value": "v"}]}, {"custom_headers.0"}),
        ({"custom_headers": [{"header": "From", "value": "x@y.com"}]}, {"custom_headers.0"}),
        (
            {"custom_headers": [{"header": "Content-Type", "value": "text/html"}]},
            {"custom_headers.0"},
        ),
        ({"sender": "Evil\r\nBcc: x@y.com <a@example.com>"}, {"sender"}),
        ({"sender": "not an address"}, {"sender"}),
        ({"sender": None}, {"sender"}),
        ({"to": ["fine@example.com", "broken@"]}, {"to.1"}),
        ({"to": ["a@example.com, b@example.com"]}, {"to.0"}),
        ({"to": None}, {"to"}),
        ({"reply_to": "nope"}, {"reply_to"}),
        ({"text_body": None}, {"text_body"}),
        ({"template_id": "welcome"}, {"template_id"}),
        ({"subaccount_id": "sub-1"}, {"subaccount_id"}),
        ({"attachments": [{"filename": "a.pdf", "fileblob": "***"}]}, {"attachments.0.fileblob"}),
        (
            {"attachments": [{"filename": "a.pdf", "url": "https://x.test/a"}]},
            {"attachments.0.url"},
        ),
        ({"attachments": [{"filename": "a.pdf"}]}, {"attachments.0.fileblob"}),
        ({"inlines": [{"filename": "a.png", "fileblob": "QQ="}]}, {"inlines.0.fileblob"}),
        (
            {"inlines": [{"filename": "a b.png", "fileblob": b64(PNG), "mimetype": "image/png"}]},
            {"inlines.0.filename"},
        ),
        (
            {"attachments": [{"filename": "a", "fileblob": b64(PDF), "mimetype": "pdf"}]},
            {"attachments.0.mimetype"},
        ),
        ({"schedule": "next week"}, {"schedule"}),
        ({"schedule": "2099-01-01 00:00:00 +0000"}, {"schedule"}),
        ({"to": "b@example.com"}, {"to"}),
        ({"unknown_key": 1}, {"unknown_key"}),
    ],
)
def test_bad_input_is_400_naming_the_fields(
    tenant: Tenant, overrides: dict[str, Any], fields: set[str]
) -> None:
    response = tenant.client.post(SEND, json=base(**overrides), headers=header_key(tenant))

    assert invalid_fields(response) == fields
    assert sent_ids(tenant) == []


@pytest.mark.parametrize(
    "mime_email",
    [
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\rBcc: c@example.com\r\n\r\nbody",
        "From: a@example.com\r\nSubject: no recipients\r\n\r\nbody",
        "To: b@example.com\r\n\r\nno sender",
        "From: a@example.com\r\nTo: b@example.com\r\n"
        "Subject: =?utf-8?q?x=0D=0ABcc:_c@x.com?=\r\n\r\nb",
        b64(b"From: a@example.com\r\n\r\nno recipients"),
        "",
    ],
)
def test_bad_mime_is_400(tenant: Tenant, mime_email: str) -> None:
    response = tenant.client.post(MIME, json={"mime_email": mime_email})

    assert invalid_fields(response) == {"mime_email"}
    assert sent_ids(tenant) == []


def test_mime_with_lone_surrogates_is_400(tenant: Tenant) -> None:
    content = b'{"mime_email": "From: a@example.com\\r\\nTo: b@example.com\\r\\n\\r\\n\\ud800"}'

    response = tenant.client.post(MIME, content=content)

    assert invalid_fields(response) == {"mime_email"}
    assert sent_ids(tenant) == []


@pytest.fixture(scope="module")
def small_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, tls_ca_bundle: Path
) -> Iterator[LiveServer]:
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("smtp2go-small"),
        tls_ca_bundle,
        message_max_bytes=20_000,
        max_request_bytes=200_000,
    )
    with serve(settings) as server:
        yield server


def test_oversized_mail_is_400(small_server: LiveServer) -> None:
    with new_tenant(small_server) as tenant:
        attached = base(attachments=[{"filename": "big.bin", "fileblob": b64(bytes(30_000))}])
        mime = "From: a@example.com\r\nTo: b@example.com\r\n\r\n" + "x" * 30_000
        too_big = tenant.client.post(SEND, json=attached)
        mime_too_big = tenant.client.post(MIME, json={"mime_email": mime})
        over_request_limit = tenant.client.post(SEND, json=base(text_body="x" * 300_000))

        for response, limit in ((too_big, 20_000), (mime_too_big, 20_000)):
            error = error_of(response, 400, "NON_VALIDATING_IN_PAYLOAD")
            assert str(limit) in error["field_validation_errors"]["message"]
        error = error_of(over_request_limit, 400, "NON_VALIDATING_IN_PAYLOAD")
        assert "200000" in error["field_validation_errors"]["message"]
        assert sent_ids(tenant) == []


# --- MIME -----------------------------------------------------------------------------------------

MIME_TEXT = (
    "From: Sender <sender@example.com>\r\n"
    "To: Alice <alice@example.com>\r\n"
    "Bcc: hidden@example.com\r\n"
    "Subject: MIME test\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße\r\n"
)


def test_mime_as_text_and_as_base64(tenant: Tenant) -> None:
    as_text = data_of(tenant.client.post(MIME, json={"mime_email": MIME_TEXT}))
    as_base64 = data_of(
        python_client_post(tenant.server, MIME, tenant.key, {"mime_email": b64(MIME_TEXT.encode())})
    )

    for data in (as_text, as_base64):
        assert (data["succeeded"], data["failed"], data["failures"]) == (2, 0, [])
        found = native(tenant, data["email_id"])
        assert found["subject"] == "MIME test"
        assert [(r["email"], r["type"]) for r in found["recipients"]] == [
            ("alice@example.com", "to"),
            ("hidden@example.com", "bcc"),
        ]
        mime = stored_mime(tenant.server, data["email_id"])
        assert "Bcc" not in mime and mime["Message-ID"] == found["message_id"] and mime["Date"]
        assert mime.get_content().strip() == "Grüße"


# --- suppressed recipients: failures --------------------------------------------------------------


def test_suppressed_recipients_are_failures(tenant: Tenant) -> None:
    suppress(tenant, "bounced@example.com")

    some = data_of(
        tenant.client.post(
            SEND, json=base(to=["ok@example.com", "Bounced@example.com"], bcc=["b2@example.com"])
        )
    )
    every = data_of(tenant.client.post(SEND, json=base(to=["bounced@example.com"])))
    mime = data_of(
        tenant.client.post(MIME, json={"mime_email": MIME_TEXT.replace("alice@", "bounced@")})
    )

    assert (some["succeeded"], some["failed"], some["failures"]) == (
        2,
        1,
        ["Bounced@example.com"],
    )
    assert (every["succeeded"], every["failed"]) == (0, 1)
    assert native(tenant, every["email_id"])["status"] == "rejected"
    assert mime["failures"] == ["bounced@example.com"] and mime["succeeded"] == 1


# --- permissions and surfaces ---------------------------------------------------------------------


def test_sending_needs_messages_send(tenant: Tenant) -> None:
    reader = tenant.key_with("messages:read")
    sender = tenant.key_with("messages:send")

    refused = python_client_post(tenant.server, SEND, reader, base())
    refused_mime = python_client_post(tenant.server, MIME, reader, {"mime_email": MIME_TEXT})
    allowed = python_client_post(tenant.server, SEND, sender, base())

    error_of(refused, 403, "ENDPOINT_PERMISSION_DENIED")
    error_of(refused_mime, 403, "ENDPOINT_PERMISSION_DENIED")
    assert data_of(allowed)["succeeded"] == 1
    permissions = python_client_post(tenant.server, "/v3/api_keys/permissions", sender, {})
    assert permissions.status_code == 200
    assert permissions.json()["data"] == [
        "/api_keys/permissions",
        "/email/send",
        "/email/mime",
        "/email/scheduled/remove",
    ]


def test_no_key_is_401(live_server: LiveServer) -> None:
    response = httpx.post(live_server.base_url + SEND, json=base())

    error_of(response, 401, "API_KEY_INVALID")


def test_mail_sent_natively_and_here_is_the_same_mail(tenant: Tenant) -> None:
    here = data_of(tenant.client.post(SEND, json=base(subject="from smtp2go")))
    response = tenant.client.post(
        "/api/v1/messages",
        json={
            "from": {"email": "a@example.com"},
            "to": [{"email": "b@example.com"}],
            "subject": "from native",
            "text": "x",
        },
    )
    there = response.json()["data"]["id"]

    found = tenant.client.post("/v3/email/search", json={}).json()["data"]["emails"]
    assert {e["email_id"]: e["subject"] for e in found} == {
        here["email_id"]: "from smtp2go",
        there: "from native",
    }
