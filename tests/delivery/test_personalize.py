"""Each recipient's copy: web links through the click redirect, the pixel before </body>,
List-Unsubscribe headers; everything else as it was."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from mailgate.delivery.mime import build_message
from mailgate.delivery.personalize import Engagement, Personalizer, rewrite_html, tracking_base
from mailgate.domain import Attachment, Mailbox, MessageDraft
from mailgate.services.tracking_tokens import TokenKind, TrackingSigner

SIGNER = TrackingSigner(["test-secret"])
BASE = "https://links.example.test"


def click(url: str) -> str | None:
    return f"{BASE}/t/c/{url.upper()}"


def tracked_click(url: str) -> str | None:
    return None if "skip" in url else click(url)


def test_only_web_links_in_anchors_are_rewritten() -> None:
    page = (
        '<a href="https://a.example/x?y=1&amp;z=2">one</a>'
        "<A HREF='http://b.example/'>two</A>"
        "<a class=c href=https://c.example/q>three</a>"
        '<a href="mailto:me@example.com">mail</a>'
        '<a href="tel:+4412345">call</a>'
        '<a href="#section">jump</a>'
        '<a href="/relative">rel</a>'
        '<a href="javascript:alert(1)">js</a>'
        '<a name="anchor">no href</a>'
        '<img src="https://img.example/i.png">'
        '<a href="https://skip.example/">too long</a>'
    )
    out = rewrite_html(page, click=tracked_click, pixel=None)  # type: ignore[arg-type]
    # the entity was decoded before signing, and the new URL is escaped back into HTML
    assert f'href="{BASE}/t/c/HTTPS://A.EXAMPLE/X?Y=1&amp;Z=2"' in out
    assert f'HREF="{BASE}/t/c/HTTP://B.EXAMPLE/"' in out
    assert f'class=c href="{BASE}/t/c/HTTPS://C.EXAMPLE/Q"' in out
    for kept in (
        '"mailto:me@example.com"',
        '"tel:+4412345"',
        '"#section"',
        '"/relative"',
        '"javascript:alert(1)"',
        '<a name="anchor">',
        '<img src="https://img.example/i.png">',
        '"https://skip.example/"',
    ):
        assert kept in out


def test_the_pixel_goes_before_the_last_body_end_or_at_the_end() -> None:
    pixel = "https://t.example/t/o/abc.gif"
    out = rewrite_html("<html><body><p>x</p></BODY ></html>", click=None, pixel=pixel)
    assert out.index('src="https://t.example/t/o/abc.gif"') < out.index("</BODY >")
    assert rewrite_html("<p>fragment</p>", click=None, pixel=pixel).endswith('border:0" />')


def test_tracking_base() -> None:
    assert tracking_base("http://127.0.0.1:8025/", None) == "http://127.0.0.1:8025"
    assert tracking_base("http://x", "Track.Example.COM.") == "https://track.example.com"


def built(**extra: object) -> bytes:
    draft = MessageDraft(
        sender=Mailbox("sender@example.com"),
        to=(Mailbox("one@example.net"), Mailbox("two@example.net")),
        subject="Offer",
        text="See https://shop.example/deal",
        html='<html><body><p>Grüße <a href="https://shop.example/deal">deal</a></p></body></html>',
        **extra,  # type: ignore[arg-type]
    )
    return build_message(draft).raw


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_a_tracked_copy_per_recipient_keeps_text_and_attachments() -> None:
    raw = built(attachments=(Attachment("a.bin", b"\x00\xffdata", "application/octet-stream"),))
    copies = Personalizer(
        raw,
        engagement=Engagement(track_opens=True, track_clicks=True),
        signer=SIGNER,
        base=BASE,
        message_id=99,
    )
    one, two = parse(copies.copy_for("one@example.net")), parse(copies.copy_for("two@example.net"))
    original = parse(raw)
    for copy in (one, two):
        assert "List-Unsubscribe" not in copy
        assert copy["Subject"] == "Offer" and copy["Message-ID"] == original["Message-ID"]
        text = copy.get_body(preferencelist=("plain",))
        assert text is not None and "https://shop.example/deal" in text.get_content()
        [attachment] = [p for p in copy.walk() if p.get_filename() == "a.bin"]
        assert attachment.get_payload(decode=True) == b"\x00\xffdata"
        html = copy.get_body(preferencelist=("html",))
        assert html is not None and "MIME-Version" not in html
        content = html.get_content()
        assert "Grüße" in content and 'href="https://shop.example/deal"' not in content
        assert f"{BASE}/t/c/" in content and f"{BASE}/t/o/" in content
    html_one = one.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    html_two = two.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert html_one != html_two  # each recipient's own tokens
    token = html_one.split(f"{BASE}/t/o/")[1].split(".gif")[0]
    read = SIGNER.read(token, TokenKind.OPEN)
    assert read is not None and read.message_id == 99
    assert read.recipient_digest == SIGNER.recipient_digest("one@example.net")


def test_an_unsubscribable_copy_is_the_same_bytes_with_two_headers_in_front() -> None:
    raw = built()
    copies = Personalizer(
        raw, engagement=Engagement(list_unsubscribe=True), signer=SIGNER, base=BASE, message_id=3
    )
    copy = copies.copy_for("one@example.net")
    head, rest = copy.split(b"\r\n", 2)[:2], copy.split(b"\r\n", 2)[2]
    assert rest == raw
    assert head[0].startswith(b"List-Unsubscribe: <https://links.example.test/u/")
    assert head[1] == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    token = head[0].decode().split("/u/")[1].rstrip(">")
    assert SIGNER.read(token, TokenKind.UNSUBSCRIBE) is not None


def test_a_message_with_its_own_list_unsubscribe_keeps_it() -> None:
    raw = built(headers=(("List-Unsubscribe", "<mailto:leave@example.com>"),))
    copies = Personalizer(
        raw, engagement=Engagement(list_unsubscribe=True), signer=SIGNER, base=BASE, message_id=3
    )
    assert copies.copy_for("one@example.net") == raw


def test_text_only_mail_is_not_parsed_or_changed_by_tracking() -> None:
    draft = MessageDraft(
        sender=Mailbox("sender@example.com"),
        to=(Mailbox("one@example.net"),),
        subject="Plain",
        text="https://shop.example/deal",
    )
    raw = build_message(draft).raw
    copies = Personalizer(
        raw,
        engagement=Engagement(track_opens=True, track_clicks=True),
        signer=SIGNER,
        base=BASE,
        message_id=3,
    )
    assert copies.copy_for("one@example.net") == raw
