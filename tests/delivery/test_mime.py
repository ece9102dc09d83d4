"""build_message / parse_raw_message / html_to_text, checked by parsing the bytes back with
the standard library's modern parser (no mocks)."""

from __future__ import annotations

import email.parser
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses
from typing import Any

import pytest

from mailgate.delivery import mime
from mailgate.delivery.mime import (
    PROTECTED_HEADERS,
    BuiltMessage,
    build_message,
    html_to_text,
    parse_raw_message,
)
from mailgate.domain import Attachment, Mailbox, MessageDraft
from mailgate.errors import Invalid, PayloadTooLarge

SENDER = Mailbox("sender@example.com", "Sender Name")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PDF = b"%PDF-1.7\r\n" + bytes(range(256)) * 8 + b"\r\n.\r\n\n.\n\r\n%%EOF"
INJECTION = "=?utf-8?q?x=0D=0ABcc:_evil@example.net?="

# Each of these must come back exactly as subject, display name, body and filename.
TRICKY = [
    "Plain ASCII subject",
    "日本語の件名です。長い件名でも正しく折り返されて元に戻ることを確認します" * 3,
    "Grüße aus Köln — café, naïve, Ångström, œuvre",
    "emoji 🎉🚀 and a family 👨‍👩‍👧‍👦 and a flag 🇯🇵",
    "שלום עולם مرحبا",  # right-to-left scripts
    "e\u0301 combining and zero\u200bwidth",
    "  leading and trailing spaces  ",
    "double  spaces\tand a tab",
    'quotes "inside", commas, <angle brackets> and back\\slash',
    "Re: [list] a; b: c (comment) @ d.e",
    "looks encoded =?utf-8?q?hello?= but is not",
    INJECTION,
    "x" * 300,  # one word too long to fold
    "https://example.com/" + "path/" * 30 + "?q=1&r=2",
    "=?",
    "a" + " b" * 200,
]


def draft(**fields: Any) -> MessageDraft:
    values: dict[str, Any] = {
        "sender": SENDER,
        "to": (Mailbox("to@example.net", "To Person"),),
        "subject": "Hello",
        "text": "Hello there.\n",
    }
    values.update(fields)
    return MessageDraft(**values)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def content(part: MIMEPart | None) -> Any:
    """A part's decoded content, text with LF line endings (the parser keeps the CRLF)."""
    assert part is not None
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def rfc2047_names(raw: bytes, header: str) -> list[str]:
    """Display names as mail clients decode them, to the letter of RFC 2047 (white space
    between encoded-words dropped): the legacy ``email.header`` API does so, the modern
    parser re-adds a space there."""
    value = BytesParser(policy=email.policy.compat32).parsebytes(raw)[header]
    assert isinstance(value, str)
    pairs = getaddresses([value.replace("\r\n", "")])
    return [str(make_header(decode_header(name))) for name, _ in pairs]


def tree(part: MIMEPart) -> Any:
    """The content types, nested: ``("multipart/mixed", [...])`` or ``"text/plain"``."""
    if part.is_multipart():
        children = part.get_payload()
        assert isinstance(children, list)
        return (
            part.get_content_type(),
            [tree(child) for child in children if isinstance(child, MIMEPart)],
        )
    return part.get_content_type()


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def issues(error: pytest.ExceptionInfo[Invalid]) -> dict[str, str]:
    return {issue.field: issue.code for issue in error.value.issues}


def assert_wire_safe(built: BuiltMessage) -> None:
    """CRLF only, no line over 998 characters, no Bcc header anywhere."""
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", built.raw) is None
    assert max(len(line) for line in built.raw.split(b"\r\n")) <= 998
    assert not any(line.lower().startswith(b"bcc:") for line in built.raw.split(b"\r\n"))


# --- structure -------------------------------------------------------------------------

LOGO = Attachment("logo.png", PNG, "image/png", content_id="logo")
REPORT = Attachment("report.pdf", PDF, "application/pdf")
HTML = '<p>Hi <b>there</b>, see <a href="https://example.com/x">this</a>.</p><img src="cid:logo">'

ALTERNATIVE = ("multipart/alternative", ["text/plain", "text/html"])
RELATED = (
    "multipart/alternative",
    ["text/plain", ("multipart/related", ["text/html", "image/png"])],
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"text": "only text"}, "text/plain"),
        ({"text": None, "html": None}, "text/plain"),
        ({"text": None, "html": HTML}, ALTERNATIVE),
        ({"text": "text", "html": HTML}, ALTERNATIVE),
        ({"text": "text", "html": HTML, "attachments": (LOGO,)}, RELATED),
        ({"text": None, "html": HTML, "attachments": (LOGO,)}, RELATED),
        (
            {"text": "text", "attachments": (REPORT,)},
            ("multipart/mixed", ["text/plain", "application/pdf"]),
        ),
        (
            {"text": "text", "html": HTML, "attachments": (REPORT,)},
            ("multipart/mixed", [ALTERNATIVE, "application/pdf"]),
        ),
        (
            {"text": "text", "html": HTML, "attachments": (REPORT, LOGO, REPORT)},
            ("multipart/mixed", [RELATED, "application/pdf", "application/pdf"]),
        ),
        (  # inline parts without HTML to refer to them ride along in multipart/mixed
            {"text": "text", "attachments": (LOGO,)},
            ("multipart/mixed", ["text/plain", "image/png"]),
        ),
    ],
)
def test_structure(fields: dict[str, Any], expected: Any) -> None:
    built = build_message(draft(**fields), now=NOW)
    assert_wire_safe(built)
    message = parse(built.raw)
    assert tree(message) == expected
    assert message["MIME-Version"] == "1.0"
    assert not message.defects
    assert all(not part.defects for part in message.walk())


def test_html_only_gets_a_text_part_derived_from_the_html() -> None:
    message = parse(build_message(draft(text=None, html=HTML)).raw)
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert content(plain) == "Hi there, see this (https://example.com/x).\n"
    assert content(html) == HTML + "\n"


def test_inline_part_is_in_multipart_related_with_its_content_id() -> None:
    logo = Attachment("ロゴ.png", PNG, "image/png", content_id="<logo@example.com>")
    built = build_message(draft(html=HTML, attachments=(logo, REPORT)))
    message = parse(built.raw)
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert image["Content-ID"] == "<logo@example.com>"
    assert image.get_content_disposition() == "inline"
    assert image.get_filename() == "ロゴ.png"
    assert image.get_content() == PNG
    (attachment,) = message.iter_attachments()
    assert attachment.get_content_disposition() == "attachment"
    assert attachment["Content-ID"] is None


def test_attachment_bytes_survive() -> None:
    payloads = [PDF, b"", b"\x00" * 1000, bytes(range(256)) * 300, b"text\nwith bare LF\r"]
    attachments = tuple(
        Attachment(f"file{i}.bin", data, mimetype)
        for i, (data, mimetype) in enumerate(
            zip(
                payloads,
                ["application/pdf", "application/octet-stream", "text/plain"] * 2,
                strict=False,
            )
        )
    )
    message = parse(build_message(draft(attachments=attachments)).raw)
    found = list(message.iter_attachments())
    assert [a.get_filename() for a in found] == [f"file{i}.bin" for i in range(len(payloads))]
    assert [a.get_content_type() for a in found] == [a.mimetype for a in attachments]
    assert [a.get_payload(decode=True) for a in found] == payloads


# --- headers ---------------------------------------------------------------------------


def test_headers() -> None:
    built = build_message(
        draft(
            to=(Mailbox("a@example.net", "A"), Mailbox("B@Example.net")),
            cc=(Mailbox("c@example.net"), Mailbox("b@example.net")),
            bcc=(Mailbox("hidden@example.org", "Hidden"), Mailbox("A@example.net")),
            reply_to=(Mailbox("replies@example.com", "Replies"),),
            subject="Quarterly report",
        ),
        now=NOW,
    )
    assert_wire_safe(built)
    message = parse(built.raw)
    assert message["From"] == "Sender Name <sender@example.com>"
    assert message["From"].addresses[0].display_name == "Sender Name"
    assert [a.addr_spec for a in message["To"].addresses] == ["a@example.net", "B@example.net"]
    assert [a.addr_spec for a in message["Cc"].addresses] == ["c@example.net", "b@example.net"]
    assert message["Reply-To"].addresses[0].addr_spec == "replies@example.com"
    assert message["Subject"] == "Quarterly report"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"] == built.message_id
    assert re.fullmatch(r"<[^<>@\s]+@example\.com>", built.message_id)
    assert "Bcc" not in message and b"hidden@example.org" not in built.raw
    assert built.envelope_from == "sender@example.com"
    # to + cc + bcc in order, the first spelling of each address kept
    assert built.recipients == (
        "a@example.net",
        "B@example.net",
        "c@example.net",
        "hidden@example.org",
    )
    assert built.smtputf8 is False
    names = [line.split(b":", 1)[0] for line in header_lines(built.raw) if line[:1] != b" "]
    assert names[:8] == [
        b"From",
        b"To",
        b"Cc",
        b"Reply-To",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"MIME-Version",
    ]


def test_bcc_only_has_no_to_header() -> None:
    built = build_message(draft(to=(), bcc=(Mailbox("hidden@example.org"),)))
    message = parse(built.raw)
    assert "To" not in message and "Bcc" not in message and "Cc" not in message
    assert built.recipients == ("hidden@example.org",)


def test_date_and_message_id_domain() -> None:
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=tokyo)
    built = build_message(draft(), now=local, message_id_domain="mail.example.org")
    message = parse(built.raw)
    assert message["Date"] == "Fri, 02 Jan 2026 03:04:05 +0900"
    assert built.message_id.endswith("@mail.example.org>")

    naive = build_message(draft(), now=datetime(2026, 1, 2, 3, 4, 5))  # taken as UTC
    assert parse(naive.raw)["Date"].datetime == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    default = parse(build_message(draft()).raw)["Date"].datetime
    assert abs(default - datetime.now(UTC)) < timedelta(minutes=5)

    idn = build_message(draft(), message_id_domain="例え.jp")
    assert idn.message_id.endswith("@xn--r8jz45g.jp>")
    sender_idn = build_message(draft(sender=Mailbox("info@bücher.example")))
    assert sender_idn.message_id.endswith("@xn--bcher-kva.example>")

    for bad in ("bad domain", "mail.example.org>\r\nBcc: x@y.z", "a..b", ""):
        with pytest.raises(Invalid) as error:
            build_message(draft(), message_id_domain=bad)
        assert issues(error) == {"message_id_domain": "invalid"}


def test_two_messages_get_different_message_ids() -> None:
    assert build_message(draft()).message_id != build_message(draft()).message_id


@pytest.mark.parametrize("text", TRICKY)
def test_non_ascii_and_tricky_text_round_trips(text: str) -> None:
    built = build_message(
        draft(
            sender=Mailbox("sender@example.com", text),
            to=(Mailbox("to@example.net", text), Mailbox("other@example.net", "Other")),
            subject=text,
            text=text + "\n",
            html=f"<p>{text}</p>\n",
            attachments=(Attachment(text, b"data", "application/octet-stream"),),
        )
    )
    assert_wire_safe(built)
    message = parse(built.raw)
    assert "Bcc" not in message
    assert str(message["Subject"]) == text
    assert rfc2047_names(built.raw, "From") == [text]
    assert rfc2047_names(built.raw, "To") == [text, "Other"]
    # Python's own parser adds a space between a display name's encoded-words (and
    # collapses white space inside one): the same text, give or take white space.
    python_name = message["From"].addresses[0].display_name
    assert "".join(python_name.split()) == "".join(text.split())
    if len(text.encode()) <= 45 and "  " not in text and "\t" not in text:
        assert python_name == text  # one encoded-word at most: exact
    assert [a.display_name for a in message["To"].addresses][1] == "Other"
    assert content(message.get_body(preferencelist=("plain",))) == text + "\n"
    assert content(message.get_body(preferencelist=("html",))) == f"<p>{text}</p>\n"
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == text.strip()  # get_filename() strips
    parameter = attachment.get_param("filename", header="content-disposition")
    assert collapse_rfc2231_value(parameter) == text  # type: ignore[arg-type]
    for line in header_lines(built.raw):  # subject and names fold like RFC 5322 asks
        if line.startswith((b"Subject:", b"From:", b"To:", b" ")):
            assert len(line) <= 78, line


def test_encoded_word_lookalikes_cannot_inject_headers() -> None:
    """Python < 3.11.10 (CVE-2024-6923) turns these into a real Bcc line if let near them."""
    built = build_message(
        draft(
            sender=Mailbox("sender@example.com", INJECTION),
            subject=INJECTION,
            headers=(("X-Note", INJECTION),),
            attachments=(Attachment(INJECTION, b"x"),),
        )
    )
    assert_wire_safe(built)
    message = parse(built.raw)
    assert all(part.get_all("Bcc") is None for part in message.walk())
    assert str(message["Subject"]) == INJECTION
    # a custom header goes out exactly as the caller wrote it, on one line
    assert f"X-Note: {INJECTION}".encode() in header_lines(built.raw)


def test_body_with_long_lines_and_dots() -> None:
    text = "a" * 2000 + "\n.\n..\nFrom the start\n" + "é" * 1500 + "\n"
    built = build_message(draft(text=text, html="<p>" + "b" * 3000 + "</p>"))
    assert_wire_safe(built)
    message = parse(built.raw)
    plain = message.get_body(preferencelist=("plain",))
    assert content(plain) == text
    assert plain is not None
    assert plain["Content-Transfer-Encoding"] in ("quoted-printable", "base64")


def test_ascii_body_is_7bit_and_non_ascii_is_encoded() -> None:
    ascii_part = parse(build_message(draft(text="plain\n")).raw)
    assert ascii_part["Content-Transfer-Encoding"] == "7bit"
    japanese = parse(build_message(draft(text="こんにちは\n")).raw)
    assert japanese["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert japanese.get_content_charset() == "utf-8"


def test_custom_headers() -> None:
    unsubscribe = "<https://example.com/unsubscribe/" + "t" * 120 + ">, <mailto:u@example.com>"
    headers = (
        ("List-Unsubscribe", unsubscribe),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("In-Reply-To", "<parent@example.com>"),
        ("References", " ".join(f"<id{i}@example.com>" for i in range(20))),
        ("Precedence", "bulk"),
        ("X-Campaign", "spring-2026"),
        ("X-Campaign", "second value"),
        ("X-Japanese", "日本語のヘッダー値 🎉"),
        ("x-lower-case", "kept"),
    )
    built = build_message(draft(headers=headers))
    assert_wire_safe(built)
    message = parse(built.raw)
    assert str(message["List-Unsubscribe"]) == unsubscribe  # not an encoded-word
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["In-Reply-To"] == "<parent@example.com>"
    assert message["References"] == headers[3][1]
    assert message["Precedence"] == "bulk"
    assert message.get_all("X-Campaign") == ["spring-2026", "second value"]
    assert message["X-Japanese"] == "日本語のヘッダー値 🎉"
    assert message["x-lower-case"] == "kept"


# --- refusals --------------------------------------------------------------------------

BREAKS = ["\r\n", "\n", "\r", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("bad", BREAKS)
def test_line_breaks_and_controls_are_refused(bad: str) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"subject": f"Hello{bad}Bcc: evil@example.net"}, "subject"),
        ({"sender": Mailbox("sender@example.com", f"Name{bad}Bcc: x@y.z")}, "from.name"),
        ({"to": (Mailbox("a@example.net"), Mailbox("b@example.net", f"B{bad}"))}, "to.1.name"),
        ({"cc": (Mailbox("c@example.net", f"C{bad}X: y"),)}, "cc.0.name"),
        ({"reply_to": (Mailbox("r@example.net", f"R{bad}"),)}, "reply_to.0.name"),
        ({"headers": (("X-Ok", "fine"), ("X-Bad", f"v{bad}Bcc: e@x.y"))}, "headers.X-Bad"),
        ({"attachments": (Attachment(f"a{bad}.pdf", b"x"),)}, "attachments.0.filename"),
    ]
    for fields, field in cases:
        with pytest.raises(Invalid) as error:
            build_message(draft(**fields))
        assert issues(error) == {field: "invalid"}, fields


@pytest.mark.parametrize(
    "address",
    [
        "evil@example.net>\r\nBcc: x@example.org",
        "evil@example.net\nBcc: x@example.org",
        "a@example.net, b@example.net",
        "<a@example.net>",
        "Name <a@example.net>",
        "not an address",
        "",
        "a@",
        "@example.net",
        '"quoted local"@example.net',
        "a b@example.net",
        "a@exa mple.net",
    ],
)
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(to=(Mailbox("ok@example.net"), Mailbox(address))))
    assert issues(error) == {"to.1.address": "invalid"}
    with pytest.raises(Invalid) as error:
        build_message(draft(sender=Mailbox(address), bcc=(Mailbox(address),)))
    assert issues(error) == {"from.address": "invalid", "bcc.0.address": "invalid"}


def test_a_mailbox_seen_before_is_checked_again_with_each_name() -> None:
    """Usable mailboxes are remembered (most mail comes from a few senders): neither a bad
    name beside a remembered address nor a bad address is let through, nor either hidden."""
    first = parse(build_message(draft(sender=Mailbox("seen@example.com", "Seen"))).raw)
    again = parse(build_message(draft(sender=Mailbox("seen@example.com", "Seen"))).raw)
    assert first["From"] == again["From"] == "Seen <seen@example.com>"
    with pytest.raises(Invalid) as error:
        build_message(draft(sender=Mailbox("seen@example.com", "Seen\r\nBcc: x@example.org")))
    assert issues(error) == {"from.name": "invalid"}
    with pytest.raises(Invalid) as error:
        build_message(draft(sender=Mailbox("seen@", "Seen\nBcc: x@example.org")))
    assert issues(error) == {"from.name": "invalid", "from.address": "invalid"}


@pytest.mark.parametrize(
    "name",
    ["X-Bad:Name", "X Bad", "X-Bad ", "", "X-日本", "X-Bad\r\nBcc", "X-Tab\t", "X-Bad:"],
)
def test_invalid_header_names_are_refused(name: str) -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(headers=((name, "value"),)))
    assert issues(error) == {f"headers.{name}": "invalid"}


@pytest.mark.parametrize(
    "name",
    [
        *sorted(PROTECTED_HEADERS),
        *("BCC", "Subject", "Message-Id", "Content-Type", "content-transfer-encoding"),
        *("Content-Disposition", "Content-ID", "Resent-From", "Resent-Bcc"),
    ],
)
def test_protected_headers_are_refused(name: str) -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(headers=((name, "value"),)))
    assert issues(error) == {f"headers.{name}": "protected"}
    assert error.value.issues[0].params == {"name": name}


def test_protected_set_is_sensible() -> None:
    assert {"from", "to", "cc", "bcc", "subject", "date", "message-id"} <= PROTECTED_HEADERS
    assert {"mime-version", "reply-to", "return-path", "sender"} <= PROTECTED_HEADERS
    for allowed in ("x-mailer", "list-unsubscribe", "in-reply-to", "references", "precedence"):
        assert allowed not in PROTECTED_HEADERS


def test_a_word_too_long_for_a_header_line_is_refused() -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(headers=(("X-Long", "x" * 991),)))
    assert issues(error) == {"headers.X-Long": "invalid"}
    assert error.value.issues[0].params == {"max": 990}
    built = build_message(draft(headers=(("X-Long", "x" * 990 + " " + "y" * 990),)))
    assert parse(built.raw)["X-Long"] == "x" * 990 + " " + "y" * 990


def test_no_recipients() -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(to=(), cc=(), bcc=()))
    assert issues(error) == {"to": "required"}


@pytest.mark.parametrize(
    ("attachment", "field"),
    [
        (Attachment("a.bin", b"x", "multipart/mixed"), "attachments.0.mimetype"),
        (Attachment("a.bin", b"x", "text"), "attachments.0.mimetype"),
        (Attachment("a.bin", b"x", "text/plain; charset=utf-8"), "attachments.0.mimetype"),
        (Attachment("a.bin", b"x", "text/plain\r\nX-Evil: 1"), "attachments.0.mimetype"),
        (Attachment("a.bin", b"x", "image/png", content_id="a b"), "attachments.0.content_id"),
        (
            Attachment("a.bin", b"x", "image/png", content_id="a>\r\nX: y"),
            "attachments.0.content_id",
        ),
        (Attachment("a.bin", b"x", "image/png", content_id=""), "attachments.0.content_id"),
    ],
)
def test_bad_attachments_are_refused(attachment: Attachment, field: str) -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(attachments=(attachment,)))
    assert issues(error) == {field: "invalid"}


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(Invalid) as error:
        build_message(
            draft(
                to=(),
                subject="a\nb",
                headers=(("Bcc", "x@example.net"), ("X-A", "b\r\n")),
                text="lone surrogate \ud800",
            )
        )
    assert issues(error) == {
        "to": "required",
        "subject": "invalid",
        "headers.Bcc": "protected",
        "headers.X-A": "invalid",
        "text": "invalid",
    }


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(Invalid) as error:
        build_message(draft(subject="\udc80", html="<p>\ud83d</p>"))
    assert issues(error) == {"subject": "invalid", "html": "invalid"}


# --- international addresses -------------------------------------------------------------


def test_idn_domains_are_idna_encoded_without_smtputf8() -> None:
    built = build_message(
        draft(
            sender=Mailbox("info@bücher.example", "Bücher"),
            to=(Mailbox("kunde@例え.jp"),),
            bcc=(Mailbox("hidden@münchen.example"),),
        )
    )
    assert built.smtputf8 is False
    assert built.raw.isascii()
    assert built.envelope_from == "info@xn--bcher-kva.example"
    assert built.recipients == ("kunde@xn--r8jz45g.jp", "hidden@xn--mnchen-3ya.example")
    message = parse(built.raw)
    assert message["From"].addresses[0].addr_spec == "info@xn--bcher-kva.example"
    assert message["From"].addresses[0].display_name == "Bücher"


def test_non_ascii_local_part_needs_smtputf8() -> None:
    built = build_message(
        draft(sender=Mailbox("jürgen@example.com", "Jürgen"), to=(Mailbox("用户@例え.jp"),))
    )
    assert built.smtputf8 is True
    assert built.envelope_from == "jürgen@example.com"
    assert built.recipients == ("用户@xn--r8jz45g.jp",)
    assert "jürgen@example.com".encode() in built.raw
    # the modern parser reads 8-bit headers (RFC 6532) from text, not from bytes
    message = email.parser.Parser(policy=email.policy.default).parsestr(built.raw.decode())
    assert message["From"].addresses[0].username == "jürgen"
    assert message["From"].addresses[0].display_name == "Jürgen"
    assert message["To"].addresses[0].addr_spec == "用户@xn--r8jz45g.jp"


def test_a_non_ascii_bcc_alone_needs_smtputf8() -> None:
    built = build_message(draft(bcc=(Mailbox("josé@example.org"),)))
    assert built.smtputf8 is True
    assert built.raw.isascii()  # the header never names it
    assert built.recipients == ("to@example.net", "josé@example.org")


# --- raw MIME ----------------------------------------------------------------------------

BODY = b"Body line one\r\n.\r\n..leading dots\r\nbinary \x00\xff\xfe\r\nlast line without CRLF"
RAW = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.com>\r\n"
    b"To: First <first@example.net>,\r\n second@example.net\r\n"
    b"Cc: copy@example.net\r\n"
    b"Bcc: hidden@example.org,\r\n\tother-hidden@example.org\r\n"
    b"Subject: =?utf-8?b?5pel5pys6Kqe44Gu5Lu25ZCN?= and more\r\n"
    b"X-Custom: kept\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + BODY
)


def split(raw: bytes) -> tuple[bytes, bytes]:
    header, _, body = raw.partition(b"\r\n\r\n")
    return header, body


def test_raw_message_loses_bcc_and_keeps_its_body() -> None:
    built, summary = parse_raw_message(RAW, max_bytes=len(RAW), now=NOW)
    header, body = split(built.raw)
    assert body == BODY  # byte for byte
    assert b"hidden" not in header and b"Bcc" not in header
    assert header.startswith(split(RAW)[0].split(b"\r\nBcc:")[0])
    assert b"\r\nX-Custom: kept\r\n" in header
    message = parse(built.raw)
    assert "Bcc" not in message
    assert message["Message-ID"] == built.message_id
    assert built.message_id.endswith("@example.com>")
    assert message["Date"].datetime == NOW
    assert built.envelope_from == "juergen@example.com"
    assert built.recipients == (
        "first@example.net",
        "second@example.net",
        "copy@example.net",
        "hidden@example.org",
        "other-hidden@example.org",
    )
    assert built.smtputf8 is False
    assert summary.sender == Mailbox("juergen@example.com", "Jürgen")
    assert summary.to == (Mailbox("first@example.net", "First"), Mailbox("second@example.net"))
    assert summary.cc == (Mailbox("copy@example.net"),)
    assert summary.bcc == (
        Mailbox("hidden@example.org"),
        Mailbox("other-hidden@example.org"),
    )
    assert summary.subject == "日本語の件名 and more"


def test_raw_message_keeps_its_message_id_and_date() -> None:
    raw = (
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID:\r\n <original@example.com>\r\n"
        b"From: a@example.com\r\nTo: b@example.net\r\n\r\nbody\r\n"
    )
    built, _ = parse_raw_message(raw, max_bytes=10_000, message_id_domain="ignored.example")
    assert built.raw == raw
    assert built.message_id == "<original@example.com>"


def test_raw_message_id_domain() -> None:
    raw = "From: a@bücher.example\r\nTo: b@example.net\r\n\r\nbody".encode()
    built, summary = parse_raw_message(raw, max_bytes=1000, message_id_domain="mx.example.org")
    assert built.message_id.endswith("@mx.example.org>")
    assert built.smtputf8 is True  # the raw header itself carries UTF-8
    assert built.envelope_from == "a@xn--bcher-kva.example"
    assert summary.sender == Mailbox("a@bücher.example")
    built, _ = parse_raw_message(raw, max_bytes=1000)
    assert built.message_id.endswith("@xn--bcher-kva.example>")


def test_raw_message_with_lf_endings_becomes_crlf() -> None:
    raw = b"From: a@example.com\nTo: b@example.net\nSubject: lf\n\nline 1\nline 2\r\nline 3\rend"
    built, _ = parse_raw_message(raw, max_bytes=1000, now=NOW)
    header, body = split(built.raw)
    assert body == b"line 1\r\nline 2\r\nline 3\r\nend"
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", built.raw) is None
    assert header.startswith(b"From: a@example.com\r\nTo: b@example.net\r\nSubject: lf\r\n")


def test_raw_message_without_a_body() -> None:
    built, _ = parse_raw_message(b"From: a@example.com\r\nTo: b@example.net", max_bytes=100)
    assert split(built.raw)[1] == b"" and built.raw.endswith(b"\r\n\r\n")
    assert parse(built.raw)["To"] == "b@example.net"


def test_raw_message_with_utf8_headers_needs_smtputf8() -> None:
    raw = "From: José <josé@example.com>\r\nTo: 太郎 <taro@例え.jp>\r\nSubject: 件名\r\n\r\nx"
    built, summary = parse_raw_message(raw.encode(), max_bytes=1000)
    assert built.smtputf8 is True
    assert built.recipients == ("taro@xn--r8jz45g.jp",)
    assert summary.subject == "件名"
    assert summary.sender == Mailbox("josé@example.com", "José")
    assert summary.to == (Mailbox("taro@例え.jp", "太郎"),)


def test_a_built_message_is_accepted_as_raw() -> None:
    original = build_message(
        draft(
            subject="件名 🎉",
            cc=(Mailbox("copy@example.net"),),
            bcc=(Mailbox("hidden@example.org"),),
            html=HTML,
            attachments=(LOGO, REPORT),
        )
    )
    built, summary = parse_raw_message(original.raw, max_bytes=len(original.raw))
    assert built.raw == original.raw
    assert built.message_id == original.message_id
    assert built.recipients == ("to@example.net", "copy@example.net")  # Bcc was never written
    assert summary.subject == "件名 🎉"
    assert summary.sender == SENDER


def test_oversized_raw_message() -> None:
    with pytest.raises(PayloadTooLarge) as error:
        parse_raw_message(RAW, max_bytes=len(RAW) - 1)
    (issue,) = error.value.issues
    assert (issue.field, issue.code, issue.params) == (
        "mime",
        "too_large",
        {"max_bytes": len(RAW) - 1},
    )


OK_HEAD = b"From: a@example.com\r\nTo: b@example.net\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b"\r\n\r\nbody only",
        b"\x00\x01\x02\xff" * 10,
        b"From a@example.com Mon Jan 1 00:00:00 2024\r\n" + OK_HEAD + b"\r\n",  # mbox line
        b" continuation first\r\n" + OK_HEAD + b"\r\n",
        b"From : a@example.com\r\nTo: b@example.net\r\n\r\n",
        b"To: b@example.net\r\n\r\nno from",
        OK_HEAD.replace(b"To:", b"X-Not-To:") + b"\r\nno recipients",
        b"From: a@example.com\r\nFrom: c@example.com\r\nTo: b@example.net\r\n\r\n",
        b"From: a@example.com, c@example.com\r\nTo: b@example.net\r\n\r\n",
        b"From: \r\nTo: b@example.net\r\n\r\n",
        OK_HEAD + b"Cc: not an address\r\n\r\n",
        OK_HEAD + b"Cc: <<<>>>\r\n\r\n",
        OK_HEAD + b"Cc: a@\r\n\r\n",
        OK_HEAD + b"Cc: " + b"x@example.net, " * 2000 + b"\r\n\r\n",  # too long to parse
    ],
)
def test_unparseable_raw_messages(raw: bytes) -> None:
    with pytest.raises(Invalid) as error:
        parse_raw_message(raw, max_bytes=1_000_000)
    assert [issue.field for issue in error.value.issues] == ["mime"]
    assert not isinstance(error.value, PayloadTooLarge)


@pytest.mark.parametrize(
    "raw",
    [
        OK_HEAD + b"Subject: bare LF\nBcc: evil@example.org\r\n\r\n",
        OK_HEAD + b"Subject: bare CR\rBcc: evil@example.org\r\n\r\n",
        b"From: a@example.com\nTo: b@example.net\r\nSubject: mixed\n\n",
        OK_HEAD + b"Subject: nul \x00 here\r\n\r\n",
        OK_HEAD + b"Subject: vertical tab \x0b here\r\n\r\n",
        OK_HEAD + b"Subject: del \x7f here\r\n\r\n",
        OK_HEAD + "Subject: next line \x85 here\r\n\r\n".encode(),
        OK_HEAD + "Subject: line separator \u2028 here\r\n\r\n".encode(),
        OK_HEAD + b"Subject: latin-1 \xe9t\xe9\r\n\r\n",
        OK_HEAD + b"Subject: truncated \xe6\x97\r\n\r\n",
        OK_HEAD + b"Subject: " + INJECTION.encode() + b"\r\n\r\n",
        b'From: "=?utf-8?q?a=0D=0ABcc:_x@y.z?=" <a@example.com>\r\nTo: b@example.net\r\n\r\n',
        b"From: =?utf-8?q?a=00b?= <a@example.com>\r\nTo: b@example.net\r\n\r\n",
    ],
)
def test_header_injection_in_raw_messages(raw: bytes) -> None:
    with pytest.raises(Invalid) as error:
        parse_raw_message(raw, max_bytes=1_000_000)
    assert [issue.field for issue in error.value.issues] == ["mime"]


def test_control_characters_in_the_body_are_kept() -> None:
    body = b"nul \x00 and vertical tab \x0b and 8-bit \xe9\r\n"
    built, _ = parse_raw_message(OK_HEAD + b"\r\n" + body, max_bytes=1000)
    assert split(built.raw)[1] == body


# --- html_to_text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        (
            "<p>Hello&nbsp;<b>world</b> &amp; co &lt;tag&gt; &#233; &eacute;</p>",
            "Hello world & co <tag> é é",
        ),
        ("Line 1<br>Line 2<br/><br><br>Line 3", "Line 1\nLine 2\n\nLine 3"),
        ("<h1>Title</h1>Text<h2>Sub</h2>", "Title\n\nText\n\nSub"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<ul><li>one</li><li>two</li></ul><p>after</p>", "- one\n- two\n\nafter"),
        (
            "<ol><li>first</li><li>second<ul><li>nested</li></ul></li></ol>",
            "1. first\n2. second\n  - nested",
        ),
        (
            'See <a href="https://example.com/x?a=1&amp;b=2">our site</a>.',
            "See our site (https://example.com/x?a=1&b=2).",
        ),
        ('<a href="https://example.com">https://example.com</a>', "https://example.com"),
        ('<a href="mailto:help@example.com">help@example.com</a>', "help@example.com"),
        (
            '<a href="mailto:help@example.com">write to us</a>',
            "write to us (mailto:help@example.com)",
        ),
        ('<a href="#top">top</a> <a href="javascript:void(0)">js</a>', "top js"),
        ('<a href="https://example.com/x"><img src="a.png"></a>', "https://example.com/x"),
        ('<img src="logo.png" alt="Company logo"> text', "Company logo text"),
        (
            "<html><head><title>T</title><style>p {color: red}</style>"
            "<script>alert('x')</script></head><body><p>Body</p></body></html>",
            "Body",
        ),
        ("<p>  lots   of\n\n  white\tspace  </p>", "lots of white space"),
        ("<pre>  keep\n    indentation</pre>", "  keep\n    indentation"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a b\nc d"),
        ("<p>日本語の本文 🎉</p><blockquote>引用</blockquote>", "日本語の本文 🎉\n\n引用"),
        ("<!-- a comment --><p>x</p><!DOCTYPE html>", "x"),
        ("<p>unclosed <b>bold <i>and italic", "unclosed bold and italic"),
        ("a<hr>b", "a\n\nb"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_never_has_more_than_one_blank_line() -> None:
    text = html_to_text("<p>a</p>" + "<br>" * 10 + "<p></p><div></div><p>b</p>")
    assert text == "a\n\nb"


def test_address_headers_are_real_address_headers() -> None:
    message = parse(build_message(draft(cc=(Mailbox("c@example.net", "Cé, Cee"),))).raw)
    for name in ("From", "To", "Cc"):
        assert isinstance(message[name], AddressHeader)
        assert not message[name].defects
    assert message["Cc"].addresses[0].display_name == "Cé, Cee"


def test_the_final_check_catches_a_header_that_was_not_set() -> None:
    """Every built message is parsed back and must have exactly the header fields that were
    set, part by part: an extra line (what Python < 3.11.10 writes for an encoded-word hiding
    CR LF, CVE-2024-6923) or a bare line ending fails the check."""
    message = EmailMessage(policy=email.policy.SMTP)
    message.set_raw("Subject", "s")
    message.set_content("x")
    raw = message.as_bytes()
    assert mime._is_exactly(raw, message)
    for injected in (b"Subject: s\r\nBcc: evil@example.net\r\n", b"Subject: s\nX: y\r\n"):
        assert not mime._is_exactly(raw.replace(b"Subject: s\r\n", injected), message)
    built = build_message(draft(html=HTML, attachments=(LOGO, REPORT)))
    assert mime._is_exactly(built.raw, parse(built.raw))


PLAIN_FIELDS = [
    "a@b.co",
    "<a@b.co>",
    "John Doe <john@example.com>",
    "John Doe<john@example.com>",
    " x-y_z'q <a.b+c@sub.example.org> ",
    "a@b.co, <c@d.ef>,Jane <jane@y.io>",
    "a!#$%&'*+/=?^_`{|}~-@x.io",
]
NOT_PLAIN_FIELDS = [
    '"Doe, John" <john@example.com>',
    "=?utf-8?q?J=C3=B6rg?= <j@example.com>",
    "John (the boss) <john@example.com>",
    "John  Doe <j@x.io>",
    "Zoë <z@example.com>",
    "undisclosed-recipients:;",
    "a@[127.0.0.1]",
]


@pytest.mark.parametrize("value", PLAIN_FIELDS)
def test_plain_address_fields_read_as_the_header_registry_reads_them(value: str) -> None:
    registry = email.policy.default.header_factory("to", value)
    assert isinstance(registry, AddressHeader)
    expected = [(a.display_name or None, a.addr_spec) for a in registry.addresses]
    assert mime._simple_mailboxes(value) == expected


@pytest.mark.parametrize("value", NOT_PLAIN_FIELDS)
def test_other_address_fields_are_left_to_the_header_registry(value: str) -> None:
    assert mime._simple_mailboxes(value) is None


def test_raw_message_with_plain_and_quoted_senders_parse_alike() -> None:
    for sender, name in (
        ("Ann Lee <ann@example.com>", "Ann Lee"),
        ('"Lee, Ann" <ann@example.com>', "Lee, Ann"),
    ):
        raw = f"From: {sender}\r\nTo: <b@example.net>\r\nSubject: Hi  there\r\n\r\nx\r\n".encode()
        _, summary = mime.parse_raw_message(raw, max_bytes=10_000)
        assert summary.sender == Mailbox("ann@example.com", name)
        assert summary.to == (Mailbox("b@example.net"),)
        assert summary.subject == "Hi  there"
