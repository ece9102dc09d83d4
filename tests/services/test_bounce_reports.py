"""Reading bounce and complaint reports: the samples in tests/fixtures/bounces (written from the
formats of RFC 3464 and RFC 5965, and from the wording of common MTAs), and bad mail of every
kind, which must never raise."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mailgate.services.bounce_reports import (
    MAX_PARSE_BYTES,
    BounceClass,
    BouncedRecipient,
    Report,
    ReportKind,
    parse_report,
)

SAMPLES = Path(__file__).parent.parent / "fixtures" / "bounces"
VERP_ADDRESS = "bounces+2n9c-abcdefghij@bounces.example.com"
HARD, SOFT = BounceClass.HARD, BounceClass.SOFT


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def brief(report: Report) -> list[tuple[str | None, BounceClass, str | None, int | None]]:
    return [(r.address, r.bounce_class, r.status, r.smtp_code) for r in report.recipients]


# -- RFC 3464 --------------------------------------------------------------------------------


def test_standard_dsn_hard_bounce() -> None:
    report = parse_report(sample("dsn_hard.eml"))

    assert report.kind is ReportKind.BOUNCE
    assert report.standard
    assert report.reporting_mta == "mx.example.net"
    assert report.recipients == (
        BouncedRecipient(
            address="jane@example.net",
            bounce_class=HARD,
            action="failed",
            status="5.1.1",
            smtp_code=550,
            diagnostic="550 5.1.1 <jane@example.net>... User unknown",
            remote_mta="mailstore.example.net",
        ),
    )
    assert report.original_message_id == "<original-1@mail.example.com>"
    assert report.original_return_path == VERP_ADDRESS
    assert report.complaint is None


def test_dsn_with_a_failed_a_delayed_and_a_delivered_recipient() -> None:
    report = parse_report(sample("dsn_two_recipients.eml"))

    assert brief(report) == [
        ("jane.doe@mailstore.example.net", HARD, "5.1.1", 550),
        ("bob@example.org", SOFT, "4.4.1", 421),
    ]  # carol was delivered: not a bounce
    jane, bob = report.recipients
    assert jane.original == "jane@example.net"  # the address we sent to, before forwarding
    assert jane.action == "failed"  # "(mailbox gone)" is a comment
    assert jane.diagnostic == (
        "550-5.1.1 The email account that you tried to reach does not exist"
    )  # folded line joined
    assert bob.action == "delayed"
    assert bob.original is None
    assert report.original_message_id == "<original-2@mail.example.com>"  # text/rfc822-headers
    assert report.original_return_path == VERP_ADDRESS


def test_dsn_with_only_a_delay_is_soft() -> None:
    report = parse_report(sample("dsn_delayed.eml"))  # CRLF line endings

    assert report.kind is ReportKind.BOUNCE
    assert brief(report) == [("bob@example.org", SOFT, "4.7.0", 451)]
    assert report.recipients[0].diagnostic == "451 4.7.0 Greylisted, please try again later"
    assert report.original_message_id == "<original-3@mail.example.com>"
    assert report.original_return_path is None  # the returned headers have none


def test_postfix_dsn() -> None:
    report = parse_report(sample("postfix_dsn.eml"))

    assert report.standard
    assert brief(report) == [("jane@example.net", HARD, "5.1.1", 550)]
    assert report.recipients[0].original is None  # the same as the final recipient
    assert report.recipients[0].diagnostic == (
        "550 5.1.1 <jane@example.net>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert report.original_message_id == "<original-1@mail.example.com>"
    # the returned headers carry no Return-Path: Postfix's X-Postfix-Sender names it
    assert report.original_return_path == VERP_ADDRESS


def dsn(status_block: str, *, encoding: str | None = None, extra: str = "") -> bytes:
    cte = f"Content-Transfer-Encoding: {encoding}\n" if encoding else ""
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        "Subject: Delivery Status Notification\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nSee below.\n\n"
        f"--B\nContent-Type: message/delivery-status\n{cte}\n{status_block}\n"
        f"{extra}--B--\n"
    ).encode()


def test_a_dsn_of_successful_delivery_names_no_bounce() -> None:
    report = parse_report(
        dsn(
            "Reporting-MTA: dns; mx.example.net\n\n"
            "Final-Recipient: rfc822; a@example.net\nAction: delivered\nStatus: 2.0.0\n\n"
            "Final-Recipient: rfc822; b@example.net\nAction: relayed\nStatus: 2.0.0\n\n"
            "Final-Recipient: rfc822; c@example.net\nAction: expanded\nStatus: 2.0.0\n"
        )
    )

    assert report.kind is ReportKind.BOUNCE
    assert report.recipients == ()


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        # failed with a temporary status (a queue that expired): not permanent
        ("Action: failed\nStatus: 4.4.7\n", (SOFT, "4.4.7", None)),
        # delayed is never permanent, whatever the status says
        ("Action: delayed\nStatus: 5.0.0\n", (SOFT, "5.0.0", None)),
        # no Status field: the diagnostic's status is used
        ("Action: failed\nDiagnostic-Code: smtp; 554 5.7.1 Rejected\n", (HARD, "5.7.1", 554)),
        # a reply code alone is enough
        ("Action: failed\nDiagnostic-Code: smtp; 550 No such user\n", (HARD, None, 550)),
        # failed, but nothing says why: we cannot call it permanent
        ("Action: failed\n", (SOFT, None, None)),
        ("Action: FAILED\nStatus: 5.2.2 (mailbox full)\n", (HARD, "5.2.2", None)),
    ],
)
def test_dsn_classes(block: str, expected: tuple[BounceClass, str | None, int | None]) -> None:
    report = parse_report(
        dsn(f"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.example\n{block}")
    )

    (entry,) = report.recipients
    assert (entry.bounce_class, entry.status, entry.smtp_code) == expected


def test_a_base64_delivery_status_part_is_decoded() -> None:
    import base64

    block = (
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; jane@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    )
    encoded = base64.encodebytes(block.encode()).decode()

    report = parse_report(dsn(encoded, encoding="base64"))

    assert brief(report) == [("jane@example.net", HARD, "5.1.1", None)]


def test_a_recipient_block_without_an_address_is_kept_unnamed() -> None:
    report = parse_report(dsn("Reporting-MTA: dns; x\n\nAction: failed\nStatus: 5.1.1\n"))

    assert brief(report) == [(None, HARD, "5.1.1", None)]


def test_global_dsn_rfc_6533() -> None:
    raw = dsn("").replace(
        b"message/delivery-status\n\n\n",
        (
            "message/global-delivery-status\n\n"
            "Reporting-MTA: dns; mx.example.net\n\n"
            "Final-Recipient: utf-8; j\u00fcrgen@example.de\nAction: failed\nStatus: 5.1.1\n\n"
        ).encode(),
    )

    report = parse_report(raw)

    assert brief(report) == [("j\u00fcrgen@example.de", HARD, "5.1.1", None)]


# -- plain-text bounces ----------------------------------------------------------------------


def test_qmail_bounce() -> None:
    report = parse_report(sample("qmail.eml"))

    assert report.kind is ReportKind.BOUNCE
    assert not report.standard
    assert brief(report) == [
        ("jane@example.org", HARD, "5.1.1", 550),
        ("old.user@example.org", HARD, "5.1.1", None),  # qmail's "(#5.1.1)"
        ("full@example.org", SOFT, "4.2.2", 452),
    ]  # other@example.org is only in the returned copy
    assert report.recipients[1].diagnostic == "Sorry, no mailbox here by that name. (#5.1.1)"
    assert report.original_message_id == "<original-4@mail.example.com>"
    assert report.original_return_path == VERP_ADDRESS


def test_exchange_style_ndr() -> None:
    report = parse_report(sample("exchange_ndr.eml"))  # quoted-printable, with an HTML twin

    assert report.kind is ReportKind.BOUNCE
    # named twice (for people, then for administrators): one entry, with the code
    assert brief(report) == [("pat.lee@contoso.example", HARD, "5.1.1", 550)]
    assert report.recipients[0].diagnostic == "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##"
    assert report.original_message_id == "<original-6@mail.example.com>"
    assert report.original_return_path == VERP_ADDRESS  # no angle brackets in this one


def test_exim_bounce_in_latin_1() -> None:
    report = parse_report(sample("exim.eml"))

    assert brief(report) == [("j.smith@example.co.uk", HARD, "5.1.1", 550)]
    assert "J\u00fcrgen" in (report.recipients[0].diagnostic or "")
    assert "203.0.113.9" in (report.recipients[0].diagnostic or "")  # an IP is not a status
    assert report.original_message_id == "<original-5@mail.example.com>"
    assert report.original_return_path == VERP_ADDRESS


def text_mail(subject: str, body: str, sender: str = "MAILER-DAEMON@mx.example.net") -> bytes:
    return (
        f"From: {sender}\nTo: {VERP_ADDRESS}\nSubject: {subject}\n"
        f"Content-Type: text/plain; charset=utf-8\n\n{body}"
    ).encode()


def test_a_text_bounce_without_codes_is_soft() -> None:
    report = parse_report(
        text_mail(
            "Undelivered Mail Returned to Sender",
            "This is the mail system at host mx.example.net.\n\n"
            "<jane@example.net>: connection to mx.example.net timed out\n",
        )
    )

    assert brief(report) == [("jane@example.net", SOFT, None, None)]
    assert report.recipients[0].diagnostic == "connection to mx.example.net timed out"


def test_a_code_stated_once_applies_when_nobody_has_their_own() -> None:
    report = parse_report(
        text_mail(
            "Delivery failure",
            "Your message couldn't be delivered.\nRemote server said: 550 5.1.1 no such user\n",
        )
    )

    assert brief(report) == [(None, HARD, "5.1.1", 550)]
    assert report.recipients[0].diagnostic == "Remote server said: 550 5.1.1 no such user"


def test_an_address_in_a_sentence() -> None:
    report = parse_report(
        text_mail(
            "Delivery Status Notification (Failure)",
            "Address not found\n\nYour message wasn't delivered to jane@example.net because "
            "the address couldn't be found.\n\nThe response was:\n\n"
            "550 5.1.1 The email account that you tried to reach does not exist.\n",
            sender="Mail Delivery Subsystem <mailer-daemon@mail.example.net>",
        )
    )

    assert brief(report) == [("jane@example.net", HARD, "5.1.1", 550)]


def test_a_bounce_that_names_nothing_is_an_unnamed_soft_bounce() -> None:
    report = parse_report(text_mail("failure notice", "Something went wrong.\n"))

    assert report.kind is ReportKind.BOUNCE
    assert brief(report) == [(None, SOFT, None, None)]


def test_ordinary_mail_and_auto_replies_are_not_bounces() -> None:
    auto_reply = text_mail(
        "Automatic reply: Your receipt",
        "I am out of the office until Monday. Call 555 1234 for urgent matters.\n",
        sender="Jane <jane@example.net>",
    )

    assert parse_report(auto_reply).kind is ReportKind.UNKNOWN
    assert parse_report(text_mail("Hello", "Hi!\n", sender="x@example.net")).kind is (
        ReportKind.UNKNOWN
    )


def test_a_returned_report_inside_a_bounce_is_not_read_as_ours() -> None:
    inner = sample("arf_abuse.eml").decode()
    raw = (
        "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n"
        'Content-Type: multipart/mixed; boundary="outer"\n\n'
        "--outer\nContent-Type: text/plain\n\n<jane@example.net>:\n550 5.1.1 unknown\n\n"
        f"--outer\nContent-Type: message/rfc822\n\n{inner}\n--outer--\n"
    ).encode()

    report = parse_report(raw)

    assert report.kind is ReportKind.BOUNCE
    assert brief(report) == [("jane@example.net", HARD, "5.1.1", 550)]
    assert report.original_message_id == "<arf-0001@mailbox.example.net>"


# -- RFC 5965 --------------------------------------------------------------------------------


def test_arf_abuse_report_with_the_whole_message() -> None:
    report = parse_report(sample("arf_abuse.eml"))

    assert report.kind is ReportKind.COMPLAINT
    assert report.standard
    assert report.recipients == ()
    complaint = report.complaint
    assert complaint is not None
    assert complaint.feedback_type == "abuse"
    assert complaint.counts_as_spam
    assert complaint.original_rcpt_to == ("jane@example.net",)
    assert complaint.original_mail_from == VERP_ADDRESS
    assert complaint.arrival_date == "Sat, 21 Nov 2026 16:55:00 +0000"
    assert complaint.user_agent == "ExampleFBL/1.0"
    assert complaint.reported_domains == ("example.com", "bounces.example.com")
    assert report.original_message_id == "<original-7@mail.example.com>"
    assert report.original_return_path == VERP_ADDRESS


def test_arf_with_only_the_headers_and_no_recipient() -> None:
    report = parse_report(sample("arf_headers.eml"))

    assert report.kind is ReportKind.COMPLAINT
    complaint = report.complaint
    assert complaint is not None
    assert complaint.feedback_type == "fraud"
    assert complaint.original_rcpt_to == ()  # redacted by the reporter
    assert complaint.reported_domains == ("example.com",)
    assert report.original_message_id == "<original-8@mail.example.com>"
    assert report.original_return_path == VERP_ADDRESS


@pytest.mark.parametrize(
    ("feedback_type", "spam"),
    [
        ("abuse", True),
        ("virus", True),
        ("other", True),
        ("not-spam", False),
        ("auth-failure", False),
    ],
)
def test_which_feedback_types_are_complaints(feedback_type: str, spam: bool) -> None:
    raw = sample("arf_abuse.eml").replace(
        b"Feedback-Type: abuse", f"Feedback-Type: {feedback_type}".encode()
    )

    complaint = parse_report(raw).complaint

    assert complaint is not None
    assert complaint.feedback_type == feedback_type
    assert complaint.counts_as_spam is spam


# -- bad mail --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"Subject: \xff\xfe\n\n\xc3\x28",
        b"Content-Type: multipart/report; report-type=delivery-status\n\nno boundary at all\n",
        b'Content-Type: multipart/report; boundary="x"\n\n'
        b"--x\nContent-Type: message/delivery-status\n",
        b"Content-Type: text/plain; charset=x-no-such-charset\n\n<a@b.example>: 550 5.1.1\n",
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!",
        b"From: =?utf-8?q?broken\nSubject: =?x-bad?b?////?=\n\nfailure notice\n",
    ],
)
def test_garbage_never_raises(raw: bytes) -> None:
    assert isinstance(parse_report(raw), Report)


def test_non_utf8_in_a_report_is_read_leniently() -> None:
    raw = dsn(
        "Reporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: rfc822; jane@example.net\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 Benutzer unbekannt: J\u00fcrgen\n"
    ).replace("J\u00fcrgen".encode(), b"J\xfcrgen")  # Latin-1, undeclared

    report = parse_report(raw)

    assert brief(report) == [("jane@example.net", HARD, "5.1.1", 550)]
    assert (report.recipients[0].diagnostic or "").startswith("550 5.1.1 Benutzer unbekannt: J")


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.eml")))
def test_every_truncation_of_every_sample_parses(name: str) -> None:
    raw = sample(name)
    for end in range(0, len(raw), 7):
        assert isinstance(parse_report(raw[:end]), Report)


def test_random_corruption_never_raises() -> None:
    rng = random.Random(20261121)
    samples = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    for _ in range(400):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 40)):
            position = rng.randrange(len(data))
            data[position : position + rng.randint(0, 5)] = rng.randbytes(rng.randint(0, 5))
        assert isinstance(parse_report(bytes(data)), Report)


def test_deep_nesting_is_unknown_not_an_error() -> None:
    depth = 3000
    raw = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    ).encode()

    assert isinstance(parse_report(raw), Report)


def test_huge_input_is_capped_and_the_report_still_read() -> None:
    padding = b"x" * 76 + b"\n"
    raw = sample("dsn_hard.eml").replace(
        b"Thank you for your order.\n", padding * (3 * MAX_PARSE_BYTES // len(padding))
    )
    assert len(raw) > 2 * MAX_PARSE_BYTES

    report = parse_report(raw)

    assert brief(report) == [("jane@example.net", HARD, "5.1.1", 550)]
    assert report.original_message_id == "<original-1@mail.example.com>"


def test_many_recipients_are_capped() -> None:
    blocks = "".join(
        f"Final-Recipient: rfc822; u{i}@example.net\nAction: failed\nStatus: 5.1.1\n\n"
        for i in range(500)
    )

    report = parse_report(dsn(f"Reporting-MTA: dns; x\n\n{blocks}"))

    assert len(report.recipients) == 100
