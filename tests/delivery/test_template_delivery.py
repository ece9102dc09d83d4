"""HTTP in, SMTP out, with templates: a template made through one surface, sent through the
native API and /v3/email/send, arrives at a real upstream rendered (subject, HTML, text)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from conftest import Tenant, make_settings, new_tenant, serve
from smtp_servers import SmtpServer


def wait_until_final(tenant: Tenant, public_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        data: dict[str, Any] = tenant.client.get(f"/api/v1/messages/{public_id}").json()["data"]
        if data["status"] not in ("queued", "scheduled"):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def test_templated_mail_arrives_rendered(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    settings = make_settings(fresh_database_url, tmp_path, tls_ca_bundle, run_workers=True)
    with serve(settings) as server, new_tenant(server) as tenant:
        provider = tenant.client.post(
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
        assert provider.status_code == 201, provider.text
        with httpx.Client(base_url=server.base_url) as raw:
            added = raw.post(
                "/v3/template/add",
                json={
                    "api_key": tenant.key,
                    "template_name": "Order receipt",
                    "id": "receipt",
                    "subject": "Receipt №{{ number }} for {{ customer.name }}",
                    "html_body": "<p>Dear {{ customer.name }},</p><ul>{% for i in items %}"
                    "<li>{{ i.name }}: {{ i.price }}</li>{% endfor %}</ul>",
                    "text_body": "Dear {{ customer.name }},\n{% for i in items %}"
                    "- {{ i.name }}: {{ i.price }}\n{% endfor %}{{ footer }}",
                },
            )
            assert added.status_code == 200, added.text
            data = {
                "number": 42,
                "customer": {"name": "Zoë <Z> & Co"},
                "items": [{"name": "Tea", "price": "3.50"}, {"name": "Cake", "price": "4"}],
            }
            smtp2go = raw.post(
                "/v3/email/send",
                json={
                    "api_key": tenant.key,
                    "sender": "shop@example.com",
                    "to": ["buyer@example.com"],
                    "template_id": "receipt",
                    "template_data": data,
                },
            )
        assert smtp2go.status_code == 200, smtp2go.text
        native = tenant.client.post(
            "/api/v1/messages",
            json={
                "from": {"email": "shop@example.com"},
                "to": [{"email": "second@example.com"}],
                "template_id": "receipt",
                "template_data": {**data, "number": 43, "footer": "Thanks!"},
            },
        )
        assert native.status_code == 201, native.text
        for public_id in (smtp2go.json()["data"]["email_id"], native.json()["data"]["id"]):
            final = wait_until_final(tenant, public_id)
            assert final["status"] == "delivered", final

    received = {m.rcpt_tos[0]: m.parsed for m in smtp_plain.messages}
    first, second = received["buyer@example.com"], received["second@example.com"]
    assert first["Subject"] == "Receipt №42 for Zoë <Z> & Co"
    assert second["Subject"] == "Receipt №43 for Zoë <Z> & Co"
    html = first.get_body(preferencelist=("html",))
    text = first.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    assert (
        "<p>Dear Zoë &lt;Z&gt; &amp; Co,</p><ul><li>Tea: 3.50</li><li>Cake: 4</li></ul>"
        in html.get_content()
    )
    assert (
        text.get_content().replace("\r\n", "\n").strip()
        == "Dear Zoë <Z> & Co,\n- Tea: 3.50\n- Cake: 4"
    )
    second_text = second.get_body(preferencelist=("plain",))
    assert second_text is not None and second_text.get_content().strip().endswith("Thanks!")
