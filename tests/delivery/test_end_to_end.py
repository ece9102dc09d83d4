"""HTTP in, SMTP out: the API accepts, the in-process worker delivers to a real upstream."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from conftest import Tenant, make_settings, new_tenant, serve
from smtp_servers import SmtpServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n% fake but binary \xff\xfe\x00\x01\n%%EOF\n"


def wait_until_final(tenant: Tenant, public_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        data: dict[str, Any] = tenant.client.get(f"/api/v1/messages/{public_id}").json()["data"]
        if data["status"] not in ("queued", "scheduled"):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def test_smtp2go_send_arrives_with_parts_headers_and_encodings(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    settings = make_settings(fresh_database_url, tmp_path, tls_ca_bundle, run_workers=True)
    with serve(settings) as server, new_tenant(server) as tenant:
        created = tenant.client.post(
            "/api/v1/providers",
            json={
                "name": "sink",
                "smtp_host": smtp_plain.host,
                "smtp_port": smtp_plain.port,
                "smtp_protocol": "none",
                "smtp_username": "unused",
                "smtp_password": "unused",
                "smtp_auth_method": "none",
            },
        )
        assert created.status_code == 201
        # The official Python client's shape: no Content-Type, every key, nulls for the unused.
        body = {
            "api_key": tenant.key,
            "sender": "Zoë Ünïcode <sender@example.com>",
            "to": ["Tō Person <to@example.com>"],
            "cc": ["<cc@example.com>"],
            "bcc": ["hidden@example.com"],
            "subject": "Rechnung №42 — 請求書",
            "text_body": "Grüße, 世界",
            "html_body": '<p>Grüße <img src="cid:logo"></p>',
            "custom_headers": [{"header": "X-Order", "value": "42"}],
            "attachments": [
                {
                    "filename": "Überweisung 請求.pdf",
                    "mimetype": "application/pdf",
                    "fileblob": base64.b64encode(PDF).decode(),
                }
            ],
            "inlines": [
                {
                    "filename": "logo.png",
                    "mimetype": "image/png",
                    "fileblob": base64.b64encode(PNG).decode(),
                    "cid": "logo",
                }
            ],
            "template_id": None,
            "template_data": None,
        }
        with httpx.Client(base_url=server.base_url) as raw:
            answer = raw.post(
                "/v3/email/send", content=httpx.Request("POST", "/", json=body).content
            )
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert data["succeeded"] == 3 and data["failed"] == 0
        final = wait_until_final(tenant, data["email_id"])
        assert final["status"] == "delivered", final
        assert {e["type"] for e in final["events"]} >= {"processed", "delivered"}

    # SMTP2GO's API has no transactional flag: the account's default (not transactional-only)
    # gives each recipient a copy with its own one-click unsubscribe link.
    copies = smtp_plain.messages
    rcpts = sorted(r for c in copies for r in c.rcpt_tos)
    assert rcpts == ["cc@example.com", "hidden@example.com", "to@example.com"]
    assert all(b"hidden@example.com" not in c.data for c in copies)
    assert len({str(c.parsed["List-Unsubscribe"]) for c in copies}) == 3
    [received] = [c for c in copies if c.rcpt_tos == ["to@example.com"]]
    message = received.parsed
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Subject"] == "Rechnung №42 — 請求書"
    assert message["From"].addresses[0].display_name == "Zoë Ünïcode"
    assert message["X-Order"] == "42"
    assert "Bcc" not in message and b"hidden@example.com" not in received.data
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and text.get_content().strip() == "Grüße, 世界"
    assert html is not None and "cid:logo" in html.get_content()
    parts = {part.get_filename(): part for part in message.walk() if part.get_filename()}
    assert parts["Überweisung 請求.pdf"].get_payload(decode=True) == PDF
    assert parts["logo.png"].get_payload(decode=True) == PNG
    assert parts["logo.png"]["Content-ID"] == "<logo>"
