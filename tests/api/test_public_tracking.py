"""Tracking and unsubscribe end to end: mail sent through the API to a real aiosmtpd
upstream, its links followed with httpx against the real server, the events and
suppressions read back from the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.store.models import Event, Suppression
from smtp_servers import ReceivedMessage, SmtpServer

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
PAGE = (
    "<html><body><p>Hello <b>&lt;you&gt;</b></p>"
    '<p><a href="https://shop.example.com/deal?a=1&amp;b=2">deal</a> '
    '<a href="mailto:help@example.com">mail us</a> <a href="tel:+15551234">call</a> '
    '<a href="#top">top</a></p></body></html>'
)
HREF = re.compile(r'href="([^"]*)"')
PIXEL = re.compile(r'<img src="([^"]*/t/o/[^"]*)"')


@dataclass
class Setup:
    server: LiveServer
    tenant: Tenant
    upstream: SmtpServer
    provider_id: str

    def send(self, to: list[str], **options: Any) -> dict[str, Any]:
        body = {
            "from": {"email": "news@example.com", "name": "News"},
            "to": [{"email": address} for address in to],
            "subject": "This week",
            "text": "Deal: https://shop.example.com/deal",
            "html": PAGE,
            **options,
        }
        response = self.tenant.client.post("/api/v1/messages", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def delivered(self, message_id: str, count: int) -> list[ReceivedMessage]:
        """Waits until the message is final and ``count`` transactions arrived."""
        deadline = time.monotonic() + 30
        while True:
            data = self.tenant.client.get(f"/api/v1/messages/{message_id}").json()["data"]
            if data["status"] not in ("queued", "scheduled", "deferred"):
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.05)
        assert data["status"] == "delivered", data
        mine = [m for m in self.upstream.messages if m.parsed["Subject"] == "This week"]
        assert len(mine) == count
        return mine

    def events(self, kind: str) -> list[Event]:
        async def work(session: Any) -> list[Event]:
            query = select(Event).where(
                Event.account_id == self.tenant.account_id, Event.type == kind
            )
            return list((await session.execute(query.order_by(Event.id))).scalars())

        return self.server.run(work)  # type: ignore[return-value]

    def suppressions(self) -> list[tuple[str, str]]:
        async def work(session: Any) -> list[tuple[str, str]]:
            query = select(Suppression.value, Suppression.reason).where(
                Suppression.account_id == self.tenant.account_id
            )
            return [tuple(row) for row in await session.execute(query)]

        return self.server.run(work)  # type: ignore[return-value]

    def follow(self, link: str) -> str:
        """The link's path on the test server (links name the configured public URL)."""
        assert link.startswith(self.server.settings.effective_public_url + "/"), link
        return httpx.URL(link).raw_path.decode()


@pytest.fixture
def setup(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> Iterator[Setup]:
    settings = make_settings(
        fresh_database_url,
        tmp_path,
        tls_ca_bundle,
        run_workers=True,
        public_url="https://mail.example.test/",
    )
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
        assert created.status_code == 201, created.text
        yield Setup(server, tenant, smtp_plain, created.json()["data"]["id"])


def html_of(message: ReceivedMessage) -> str:
    part = message.parsed.get_body(preferencelist=("html",))
    assert part is not None
    content: str = part.get_content()
    return content


def test_opens_and_clicks_are_recorded_and_clicks_redirect(setup: Setup) -> None:
    sent = setup.send(["one@example.net", "two@example.net"], track_opens=True, track_clicks=True)
    received = setup.delivered(sent["id"], count=2)  # one transaction per recipient
    by_rcpt = {m.rcpt_tos[0]: m for m in received}
    assert sorted(by_rcpt) == ["one@example.net", "two@example.net"]
    assert all(len(m.rcpt_tos) == 1 for m in received)

    page = html_of(by_rcpt["one@example.net"])
    links = [html.unescape(h) for h in HREF.findall(page)]
    assert "mailto:help@example.com" in links and "tel:+15551234" in links and "#top" in links
    [tracked] = [link for link in links if "/t/c/" in link]
    assert "shop.example.com" not in tracked  # the target is inside the signed token only
    [pixel] = PIXEL.findall(page)
    assert page.index(pixel) < page.lower().index("</body>")
    text = by_rcpt["one@example.net"].parsed.get_body(preferencelist=("plain",))
    assert text is not None and "https://shop.example.com/deal" in text.get_content()
    # the other recipient's links are its own
    assert tracked not in html_of(by_rcpt["two@example.net"])

    with httpx.Client(base_url=setup.server.base_url, headers={"User-Agent": BROWSER}) as web:
        opened = web.get(setup.follow(html.unescape(pixel)))
        assert opened.status_code == 200
        assert opened.headers["content-type"] == "image/gif"
        assert opened.content.startswith(b"GIF89a")
        assert "no-store" in opened.headers["cache-control"]
        clicked = web.get(setup.follow(tracked), follow_redirects=False)
        assert clicked.status_code == 302
        assert clicked.headers["location"] == "https://shop.example.com/deal?a=1&b=2"
        web.get(setup.follow(tracked), headers={"User-Agent": "Barracuda LinkScanner bot/1.0"})

    [open_event] = setup.events("open")
    assert open_event.recipient == "one@example.net"
    assert open_event.user_agent == BROWSER and open_event.client_ip == "127.0.0.1"
    assert open_event.automated is False and open_event.url is None
    first, scanner = setup.events("click")
    assert first.recipient == "one@example.net" and first.message_id == open_event.message_id
    assert first.url == "https://shop.example.com/deal?a=1&b=2"
    assert first.user_agent == BROWSER and first.client_ip == "127.0.0.1"
    assert first.automated is False
    assert scanner.automated is True  # recorded, flagged
    detail = setup.tenant.client.get(f"/api/v1/messages/{sent['id']}").json()["data"]
    assert [e["type"] for e in detail["events"]][-3:] == ["open", "click", "click"]


def test_tampered_and_misused_tokens_are_404_and_record_nothing(setup: Setup) -> None:
    sent = setup.send(["one@example.net"], track_opens=True, track_clicks=True, transactional=False)
    [received] = setup.delivered(sent["id"], count=1)
    page = html_of(received)
    [tracked] = [html.unescape(h) for h in HREF.findall(page) if "/t/c/" in h]
    click_token = tracked.rsplit("/", 1)[1]
    open_token = PIXEL.findall(page)[0].rsplit("/", 1)[1].removesuffix(".gif")
    unsubscribe_token = received.parsed["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]

    def flipped(token: str, at: int) -> str:
        return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]

    with httpx.Client(base_url=setup.server.base_url, headers={"User-Agent": BROWSER}) as web:
        for path in (
            f"/t/c/{flipped(click_token, 3)}",
            f"/t/c/{flipped(click_token, len(click_token) // 2)}",
            f"/t/c/{click_token[:-2]}",
            f"/t/c/{open_token}",  # an open token is no click token
            f"/t/o/{click_token}.gif",
            f"/t/o/{flipped(open_token, 5)}.gif",
            f"/t/c/{unsubscribe_token}",
            f"/t/c/{'x' * 40}",
        ):
            answer = web.get(path, follow_redirects=False)
            assert answer.status_code == 404, path
            assert "location" not in answer.headers
        assert web.get(f"/u/{open_token}").status_code == 404
        assert (
            web.post(f"/u/{click_token}", content=b"List-Unsubscribe=One-Click").status_code == 404
        )
        assert (
            web.post(f"/u/{flipped(unsubscribe_token, 4)}", data={"confirm": "yes"}).status_code
            == 404
        )
    assert setup.events("open") == [] and setup.events("click") == []
    assert setup.events("unsubscribe") == [] and setup.suppressions() == []


def test_one_click_unsubscribe_suppresses_and_the_next_send_is_rejected(setup: Setup) -> None:
    sent = setup.send(["one@example.net", "two@example.net"], transactional=False)
    received = setup.delivered(sent["id"], count=2)
    by_rcpt = {m.rcpt_tos[0]: m for m in received}
    message = by_rcpt["one@example.net"].parsed
    header = message["List-Unsubscribe"]
    assert re.fullmatch(r"<https://mail\.example\.test/u/[A-Za-z0-9_-]+>", header), header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert by_rcpt["two@example.net"].parsed["List-Unsubscribe"] != header
    # not tracked: the HTML is as it was sent
    assert html_of(by_rcpt["one@example.net"]).strip() == PAGE

    path = setup.follow(header.strip("<>"))
    with httpx.Client(base_url=setup.server.base_url) as mail_program:
        for _ in range(2):  # idempotent: the same answer, one suppression, one event
            answer = mail_program.post(
                path,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                follow_redirects=False,
            )
            assert answer.status_code == 200, answer.text
    assert setup.suppressions() == [("one@example.net", "unsubscribe")]
    [event] = setup.events("unsubscribe")
    assert event.recipient == "one@example.net" and event.detail == "one-click"

    again = setup.tenant.client.post(
        "/api/v1/messages",
        json={
            "from": {"email": "news@example.com"},
            "to": [{"email": "ONE@example.net"}, {"email": "two@example.net"}],
            "subject": "Next week",
            "text": "More",
        },
    )
    assert again.status_code == 201, again.text
    assert again.json()["data"]["rejected"] == ["ONE@example.net"]


def test_the_confirmation_page_flow(setup: Setup) -> None:
    address = "O'Neil+news&co@example.net"  # characters that HTML escapes
    sent = setup.send([address], transactional=False)
    [received] = setup.delivered(sent["id"], count=1)
    path = setup.follow(received.parsed["List-Unsubscribe"].strip("<>"))
    with httpx.Client(base_url=setup.server.base_url, headers={"User-Agent": BROWSER}) as web:
        form = web.get(path)
        assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in form.text
        assert html.escape(address) in form.text and "news&co" not in form.text
        assert form.headers["x-frame-options"] == "DENY"
        assert setup.suppressions() == []  # looking is not unsubscribing
        for _ in range(2):
            done = web.post(path, data={"confirm": "yes"}, follow_redirects=False)
            assert done.status_code == 200
            assert "unsubscribed" in done.text and html.escape(address) in done.text
    assert setup.suppressions() == [(address.lower(), "unsubscribe")]
    [event] = setup.events("unsubscribe")
    assert event.detail == "confirmation page" and event.user_agent == BROWSER


def test_transactional_untracked_mail_keeps_the_fast_path(setup: Setup) -> None:
    sent = setup.send(
        ["one@example.net", "two@example.net", "three@example.net"], transactional=True
    )
    [received] = setup.delivered(sent["id"], count=1)  # one transaction for everyone
    assert sorted(received.rcpt_tos) == ["one@example.net", "three@example.net", "two@example.net"]
    assert "List-Unsubscribe" not in received.parsed
    assert "List-Unsubscribe-Post" not in received.parsed
    assert html_of(received).strip() == PAGE


def test_account_defaults_apply_and_messages_override_them(setup: Setup) -> None:
    client = setup.tenant.client
    assert client.get("/api/v1/tracking").json()["data"] == {
        "track_opens": False,
        "track_clicks": False,
        "transactional": False,  # the rule: List-Unsubscribe unless transactional-only
        "links_base_url": "https://mail.example.test",
    }
    changed = client.patch("/api/v1/tracking", json={"track_opens": True})
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["track_opens"] is True
    assert changed.json()["data"]["track_clicks"] is False

    by_default = setup.send(["one@example.net"])
    [first] = setup.delivered(by_default["id"], count=1)
    assert PIXEL.findall(html_of(first)) and "List-Unsubscribe" in first.parsed
    assert not [h for h in HREF.findall(html_of(first)) if "/t/c/" in h]  # clicks stay off

    overridden = setup.send(["two@example.net"], track_opens=False, transactional=True)
    received = setup.delivered(overridden["id"], count=2)
    [second] = [m for m in received if m.rcpt_tos == ["two@example.net"]]
    assert not PIXEL.findall(html_of(second)) and "List-Unsubscribe" not in second.parsed


def test_links_use_the_providers_tracking_domain(setup: Setup) -> None:
    patched = setup.tenant.client.patch(
        f"/api/v1/providers/{setup.provider_id}", json={"tracking_domain": "links.example.org"}
    )
    assert patched.status_code == 200, patched.text
    sent = setup.send(["one@example.net"], track_clicks=True, transactional=False)
    [received] = setup.delivered(sent["id"], count=1)
    assert received.parsed["List-Unsubscribe"].startswith("<https://links.example.org/u/")
    [tracked] = [html.unescape(h) for h in HREF.findall(html_of(received)) if "/t/c/" in h]
    assert tracked.startswith("https://links.example.org/t/c/")
    # the same gateway answers on that name (a CNAME to it)
    with httpx.Client(base_url=setup.server.base_url) as web:
        answer = web.get(
            httpx.URL(tracked).raw_path.decode(), headers={"Host": "links.example.org"}
        )
        assert answer.status_code == 302
        assert answer.headers["location"] == "https://shop.example.com/deal?a=1&b=2"
