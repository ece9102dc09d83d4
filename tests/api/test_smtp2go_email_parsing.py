"""The pure parsers behind ``/v3/email/...`` (shared with the native surface): addresses as
SMTP2GO's clients write them, timestamps in the formats its reference lists, base64, MIME
given as text or base64."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate.api.messages_common import decode_base64, parse_instant, parse_mailbox
from mailgate.api.smtp2go.mapping_email import mime_bytes
from mailgate.domain import Mailbox
from mailgate.errors import Invalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a@example.com", Mailbox("a@example.com")),
        ("  a@example.com  ", Mailbox("a@example.com")),
        ("<a@example.com>", Mailbox("a@example.com")),
        ("Jane Jones <jane@example.com>", Mailbox("jane@example.com", "Jane Jones")),
        ('"Doe, John" <john@example.com>', Mailbox("john@example.com", "Doe, John")),
        ('"Say \\"hi\\"" <q@example.com>', Mailbox("q@example.com", 'Say "hi"')),
        ("Doe, John <john@example.com>", Mailbox("john@example.com", "Doe, John")),
        ("山田 <taro@example.jp>", Mailbox("taro@example.jp", "山田")),
        ("a@EXAMPLE.com", Mailbox("a@example.com")),
    ],
)
def test_addresses_as_clients_write_them(text: str, expected: Mailbox) -> None:
    assert parse_mailbox(text, "to.0") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nobody",
        "<>",
        "a@example.com, b@example.com",
        "Name <a@example.com",
        "<a@example.com> trailing",
        "A <b> <c@example.com>",
        "Evil\r\nBcc: x@y.com <a@example.com>",
        "a@example.com\n",
        "Name <a@exa mple.com>",
    ],
)
def test_bad_addresses_are_invalid_with_the_field_named(text: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse_mailbox(text, "to.3")

    assert [i.field for i in raised.value.issues] == ["to.3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-09-10 13:15:00 +1200", datetime(2025, 9, 10, 1, 15, tzinfo=UTC)),  # SMTP2GO's
        ("2026-01-01 12:00:00 +1300", datetime(2025, 12, 31, 23, 0, tzinfo=UTC)),
        ("2006-01-02", datetime(2006, 1, 2, tzinfo=UTC)),
        ("2006-01-02 15:04:05", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("2006-01-02T15:04:05", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("2006-01-02T15:04:05.0000000", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("2006-01-02T15:04:05Z", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("2006-01-02T15:04:05+07:00", datetime(2006, 1, 2, 8, 4, 5, tzinfo=UTC)),
        ("02 Jan 06 15:04 -0700", datetime(2006, 1, 2, 22, 4, tzinfo=UTC)),
        ("Mon, 02 Jan 2006 15:04:05 MST", datetime(2006, 1, 2, 22, 4, 5, tzinfo=UTC)),
    ],
)
def test_timestamps_in_smtp2gos_formats(text: str, expected: datetime) -> None:
    assert parse_instant(text, "schedule") == expected


@pytest.mark.parametrize(
    "text",
    ["", "soon", "2026-13-01", "2026-02-30 10:00", "9999-12-31T23:59:59-12:00", "12:00"],
)
def test_bad_timestamps_are_invalid(text: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse_instant(text, "schedule")

    assert [i.field for i in raised.value.issues] == ["schedule"]


def test_a_time_zone_can_be_required() -> None:
    with pytest.raises(Invalid):
        parse_instant("2026-01-02T10:00:00", "send_at", require_zone=True)
    assert parse_instant("2026-01-02T10:00:00Z", "send_at", require_zone=True).hour == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", b""), ("QUJD", b"ABC"), ("QU\r\nJD", b"ABC"), ("QUI=", b"AB"), ("QQ==", b"A")],
)
def test_base64(text: str, expected: bytes) -> None:
    assert decode_base64(text, "fileblob") == expected


@pytest.mark.parametrize("text", ["QUJD=", "QQ", "QU==QUJD", "QUJD!", "-_-_", "QUJD====", "Q"])
def test_bad_base64(text: str) -> None:
    with pytest.raises(Invalid) as raised:
        decode_base64(text, "attachments.2.fileblob")

    assert [i.field for i in raised.value.issues] == ["attachments.2.fileblob"]


def test_mime_given_as_text_or_as_base64() -> None:
    message = "From: a@example.com\r\nTo: b@example.com\r\n\r\nGrüße\r\n"

    assert mime_bytes(message) == message.encode()
    assert mime_bytes("RnJvbTogYUBleGFtcGxlLmNvbQ0KDQp4") == b"From: a@example.com\r\n\r\nx"
    assert mime_bytes("From: a@example.com\r\n\r\n\udcff") == b"From: a@example.com\r\n\r\n\xff"
