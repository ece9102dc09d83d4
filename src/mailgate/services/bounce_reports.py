"""Reading bounce and complaint reports: received bytes in, a typed :class:`Report` out.

Pure parsing, no I/O. Three shapes are understood:

- RFC 3464 delivery status notifications (``multipart/report; report-type=delivery-status``,
  and RFC 6533's ``message/global-delivery-status``): one entry per recipient whose Action is
  ``failed`` or ``delayed``. ``failed`` with a 5.x.x status is a hard bounce; any 4.x.x status
  or ``delayed`` is soft; ``delivered``, ``relayed`` and ``expanded`` are not bounces.
- RFC 5965 feedback reports (``report-type=feedback-report``): a complaint.
- Plain-text bounces (Postfix/Exim/qmail/sendmail/Exchange wording): failed addresses and
  SMTP codes found by conservative patterns in the text before the returned copy. Soft
  unless a 5xx reply or a 5.x.x status is seen.

In every case the returned message's ``Message-ID`` and ``Return-Path`` are extracted when
present, so the report can be tied to its message even when the VERP address was lost.

Bad mail never raises: anything unreadable is a report of kind ``unknown``. Input is capped
(:data:`MAX_PARSE_BYTES`, :data:`MAX_TEXT_CHARS`, :data:`MAX_PARTS`) so a huge or deeply
nested message costs little. The stdlib parser runs with ``compat32``: it keeps raw header
values and never fails on malformed ones; report bodies (header blocks) are read here.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, parseaddr
from enum import StrEnum
from itertools import islice
from typing import Final

__all__ = [
    "MAX_PARSE_BYTES",
    "BounceClass",
    "BouncedRecipient",
    "Complaint",
    "Report",
    "ReportKind",
    "parse_report",
]

MAX_PARSE_BYTES: Final = 1024 * 1024  # reports come first; a returned original may be huge
MAX_TEXT_CHARS: Final = 64 * 1024  # of any one body we scan with patterns
MAX_PARTS: Final = 64  # MIME parts looked at
MAX_RECIPIENTS: Final = 100  # entries kept from one report
MAX_DETAIL: Final = 1000  # characters of a diagnostic kept


class ReportKind(StrEnum):
    BOUNCE = "bounce"  # a delivery report (RFC 3464 or plain text); recipients may be empty
    COMPLAINT = "complaint"  # an RFC 5965 feedback report
    UNKNOWN = "unknown"  # neither, or unreadable


class BounceClass(StrEnum):
    HARD = "hard"  # permanent: the address is bad
    SOFT = "soft"  # temporary, or we cannot tell


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a delivery report says failed or was delayed."""

    address: str | None  # Final-Recipient (or the address found in the text); None: not named
    bounce_class: BounceClass
    original: str | None = None  # Original-Recipient, when it differs
    action: str | None = None  # "failed" | "delayed" (DSNs only)
    status: str | None = None  # enhanced status code, "5.1.1"
    smtp_code: int | None = None  # 550
    diagnostic: str | None = None  # the remote server's words
    remote_mta: str | None = None


@dataclass(frozen=True)
class Complaint:
    """What an RFC 5965 feedback report says."""

    feedback_type: str  # lower-case: abuse, fraud, virus, other, not-spam, auth-failure ...
    original_rcpt_to: tuple[str, ...] = ()
    original_mail_from: str | None = None
    arrival_date: str | None = None
    user_agent: str | None = None
    reported_domains: tuple[str, ...] = ()

    @property
    def counts_as_spam(self) -> bool:
        """A recipient objecting to the mail. ``not-spam`` is the opposite, and
        ``auth-failure`` (RFC 6591) reports the sender's authentication, not a person."""
        return self.feedback_type not in {"not-spam", "auth-failure"}


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    standard: bool = False  # RFC 3464 / RFC 5965, not guessed from text
    recipients: tuple[BouncedRecipient, ...] = ()
    complaint: Complaint | None = None
    original_message_id: str | None = None  # "<id@host>", as in the header
    original_return_path: str | None = None  # the address, without angle brackets
    reporting_mta: str | None = None


UNKNOWN: Final = Report(kind=ReportKind.UNKNOWN)


def parse_report(raw: bytes) -> Report:
    """Read one received message. Never raises: unreadable mail is ``UNKNOWN``."""
    try:
        message = BytesParser(policy=compat32).parsebytes(raw[:MAX_PARSE_BYTES])
        return _read(message)
    except Exception:  # bad mail of any shape (and RecursionError on absurd nesting)
        return UNKNOWN


# -- dispatch --------------------------------------------------------------------------------

_DSN_TYPES: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})
_FEEDBACK_TYPE: Final = "message/feedback-report"
_ORIGINAL_TYPES: Final = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
    }
)


def _read(message: Message) -> Report:
    parts = list(islice(_walk(message), MAX_PARTS))
    feedback = next((p for p in parts if p.get_content_type() == _FEEDBACK_TYPE), None)
    if feedback is not None:
        return _with_original(_read_feedback(feedback), message, parts)
    status = next((p for p in parts if p.get_content_type() in _DSN_TYPES), None)
    if status is not None:
        report = _read_delivery_status(status)
        if report is not None:
            return _with_original(report, message, parts)
    return _with_original(_read_text_bounce(message, parts), message, parts)


def _walk(message: Message) -> Iterator[Message]:
    """Every part, depth first, without entering returned messages (their parts are not
    ours: a bounce of a bounce must not be read as the inner one)."""
    yield message
    if message.get_content_maintype() == "message":
        return
    payload = message.get_payload()
    if isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from _walk(part)


# -- reading bodies --------------------------------------------------------------------------


def _to_text(value: str) -> str:
    """compat32 keeps undecodable bytes as surrogates: back to bytes, then lenient UTF-8."""
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        data = value.encode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def _decode_transfer(text: str, encoding: str) -> str:
    data = _to_text(text).encode("utf-8")
    try:
        if encoding == "base64":
            data = base64.b64decode(b"".join(data.split()), validate=False)
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass  # keep the undecoded text: better than nothing
    return data.decode("utf-8", "replace")


def _block_text(part: Message) -> str:
    """A header block as text: the parser may have split it into headers and a body."""
    # raw values: compat32 would turn undecodable bytes into "unknown-8bit" Header objects
    lines = [f"{name}: {_to_text(value)}" for name, value in part.raw_items()]
    rest = part.get_payload(decode=True)  # bytes as received (a str payload is re-decoded)
    if isinstance(rest, bytes) and rest.strip():
        lines.append(rest.decode("utf-8", "replace"))
    return "\n".join(lines)


def _raw_body(part: Message) -> str:
    """A part's body as text, transfer encoding undone, decoded as lenient UTF-8. Parts the
    parser read as messages (``message/*``) come back as their header blocks."""
    payload = part.get_payload()
    if isinstance(payload, list):
        text = "\n\n".join(_block_text(p) for p in payload if isinstance(p, Message))
        text = text[: MAX_TEXT_CHARS * 2]
        # the parser ignores a message/* part's transfer encoding: undo it here
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if encoding in {"base64", "quoted-printable"}:
            text = _decode_transfer(text, encoding)
        return text[:MAX_TEXT_CHARS]
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return data[: MAX_TEXT_CHARS * 4].decode("utf-8", "replace")[:MAX_TEXT_CHARS]


def _text_body(part: Message) -> str:
    """A text/* leaf decoded with its declared charset (lenient when it lies or is unknown)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    data = data[: MAX_TEXT_CHARS * 4]
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    return text[:MAX_TEXT_CHARS]


_FOLD: Final = re.compile(r"\r?\n[ \t]+")
_FIELD: Final = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$")


def _field_blocks(text: str) -> list[list[tuple[str, str]]]:
    """Blank-line separated blocks of ``Name: value`` fields (names lower-cased, values
    unfolded). Lines that are not fields are skipped: real reports have stray ones."""
    text = _FOLD.sub(" ", text.replace("\r\n", "\n"))
    blocks: list[list[tuple[str, str]]] = []
    for chunk in re.split(r"\n[ \t]*\n", text):
        fields = []
        for line in chunk.split("\n"):
            found = _FIELD.match(line.strip())
            if found:
                fields.append((found.group(1).lower(), found.group(2).strip()))
        if fields:
            blocks.append(fields)
    return blocks


def _first(fields: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in fields if key == name and value), None)


def _typed_value(value: str | None) -> str | None:
    """``rfc822; user@example.com`` -> ``user@example.com`` (the type is dropped)."""
    if value is None:
        return None
    _, semicolon, rest = value.partition(";")
    found = (rest if semicolon else value).strip().strip("<>").strip()
    return found[:MAX_DETAIL] or None


# -- codes -----------------------------------------------------------------------------------

# Enhanced status (RFC 3463) not inside an IP address or a version number.
_ENHANCED: Final = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
# An SMTP reply code standing alone ("550 ...", "550-...", "#550", "said: 550").
_REPLY: Final = re.compile(r"(?<![\w.#-])#?([245][0-5]\d)(?=[ \t-]|$)", re.MULTILINE)
# The strong forms we trust anywhere in a text: a reply code followed by a status, or a
# status alone ("#5.1.1" in qmail's wording, "5.7.1" in Exchange's).
_REPLY_WITH_STATUS: Final = re.compile(
    r"(?<![\w.#-])#?([245][0-5]\d)[ \t-]+([245]\.\d{1,3}\.\d{1,3})(?![\w]|\.\d)"
)


def _status_in(text: str | None) -> str | None:
    found = _ENHANCED.search(text or "")
    return ".".join(found.groups()) if found else None


def _reply_in(text: str | None) -> int | None:
    found = _REPLY.search(text or "")
    return int(found.group(1)) if found else None


def _class_of(status: str | None, code: int | None) -> BounceClass:
    """Hard only on a permanent signal; anything unclear stays soft (suppressing a good
    address costs more than missing a bad one)."""
    first = status[0] if status else str(code)[0] if code else ""
    return BounceClass.HARD if first == "5" else BounceClass.SOFT


# -- RFC 3464 --------------------------------------------------------------------------------

_NOT_BOUNCES: Final = frozenset({"delivered", "relayed", "expanded"})


def _read_delivery_status(part: Message) -> Report | None:
    blocks = _field_blocks(_raw_body(part))
    if not blocks:
        return None
    reporting_mta = None
    sender = None
    recipients: list[BouncedRecipient] = []
    for fields in blocks:
        keys = {key for key, _ in fields}
        if not keys & {"final-recipient", "original-recipient", "action"}:
            reporting_mta = reporting_mta or _typed_value(_first(fields, "reporting-mta"))
            sender = sender or _typed_value(_first(fields, "x-postfix-sender"))
            continue
        entry = _dsn_recipient(fields)
        if entry is not None and len(recipients) < MAX_RECIPIENTS:
            recipients.append(entry)
    return Report(
        kind=ReportKind.BOUNCE,
        standard=True,
        recipients=tuple(recipients),
        original_return_path=sender,
        reporting_mta=reporting_mta,
    )


def _dsn_recipient(fields: list[tuple[str, str]]) -> BouncedRecipient | None:
    action = (_first(fields, "action") or "").lower().split(" ", 1)[0] or None
    if action in _NOT_BOUNCES:
        return None
    final = _typed_value(_first(fields, "final-recipient"))
    original = _typed_value(_first(fields, "original-recipient"))
    diagnostic = _typed_value(_first(fields, "diagnostic-code"))
    status = _status_in(_first(fields, "status")) or _status_in(diagnostic)
    code = _reply_in(diagnostic)
    # delayed, or an action we do not know: never permanent
    bounce_class = _class_of(status, code) if action == "failed" else BounceClass.SOFT
    return BouncedRecipient(
        address=final or original,
        bounce_class=bounce_class,
        original=original if original and final and original.lower() != final.lower() else None,
        action=action,
        status=status,
        smtp_code=code,
        diagnostic=diagnostic,
        remote_mta=_typed_value(_first(fields, "remote-mta")),
    )


# -- RFC 5965 --------------------------------------------------------------------------------


def _read_feedback(part: Message) -> Report:
    fields = [field for block in _field_blocks(_raw_body(part)) for field in block]
    feedback_type = (_first(fields, "feedback-type") or "other").lower().split(" ", 1)[0]
    rcpt_to = [_typed_value(v) for k, v in fields if k == "original-rcpt-to"]
    domains = [v.strip().lower() for k, v in fields if k == "reported-domain" and v.strip()]
    complaint = Complaint(
        feedback_type=feedback_type[:64],
        original_rcpt_to=tuple(dict.fromkeys(a for a in rcpt_to if a))[:MAX_RECIPIENTS],
        original_mail_from=_typed_value(_first(fields, "original-mail-from")),
        arrival_date=_first(fields, "arrival-date") or _first(fields, "received-date"),
        user_agent=(_first(fields, "user-agent") or "")[:MAX_DETAIL] or None,
        reported_domains=tuple(dict.fromkeys(domains))[:MAX_RECIPIENTS],
    )
    return Report(kind=ReportKind.COMPLAINT, standard=True, complaint=complaint)


# -- the returned message --------------------------------------------------------------------

_MESSAGE_ID: Final = re.compile(r"<[^<>\s]{1,250}>")
_ADDRESS_IN_BRACKETS: Final = re.compile(r"<([^<>\s]*)>")
_HEADER_LINE: Final = r"^[ \t]*{name}[ \t]*:[ \t]*(.*)$"
_MESSAGE_ID_LINE: Final = re.compile(_HEADER_LINE.format(name="Message-ID"), re.I | re.M)
_RETURN_PATH_LINE: Final = re.compile(_HEADER_LINE.format(name="Return-Path"), re.I | re.M)


def _message_id(value: str | None) -> str | None:
    found = _MESSAGE_ID.search(value or "")
    return found.group(0) if found else None


def _return_path(value: str | None) -> str | None:
    if not value:
        return None
    found = _ADDRESS_IN_BRACKETS.search(value)
    address = found.group(1) if found else value.strip()
    return address[:320] or None  # "<>" (a null sender) is no address


def _headers_of(part: Message) -> Message:
    """The returned message's headers: an attached message, or a text/rfc822-headers body."""
    if part.get_content_maintype() == "message":
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
    return HeaderParser(policy=compat32).parsestr(_raw_body(part), headersonly=True)


def _original_from_parts(parts: list[Message]) -> tuple[str | None, str | None]:
    for part in parts[1:]:
        if part.get_content_type() not in _ORIGINAL_TYPES:
            continue
        headers = _headers_of(part)
        message_id = _message_id(_to_text(str(headers.get("Message-ID", ""))))
        return_path = _return_path(_to_text(str(headers.get("Return-Path", ""))))
        if message_id or return_path:
            return message_id, return_path
    return None, None


def _original_from_text(text: str) -> tuple[str | None, str | None]:
    found_id = _MESSAGE_ID_LINE.search(text)
    found_path = _RETURN_PATH_LINE.search(text)
    return (
        _message_id(found_id.group(1)) if found_id else None,
        _return_path(found_path.group(1)) if found_path else None,
    )


def _with_original(report: Report, message: Message, parts: list[Message]) -> Report:
    """Fill in the returned message's Message-ID and Return-Path: from an attached copy, else
    from a copy quoted in the text (plain-text bounces)."""
    message_id, return_path = _original_from_parts(parts)
    if message_id is None or return_path is None:
        texts = "\n".join(_copy_of_original(t) for t in _texts(message, parts))
        text_id, text_path = _original_from_text(texts)
        message_id = message_id or text_id
        return_path = return_path or text_path
    # an attached copy's Return-Path is what was really used; Postfix's sender field next
    return replace(
        report,
        original_message_id=message_id,
        original_return_path=return_path or report.original_return_path,
    )


# -- plain-text bounces ----------------------------------------------------------------------

_SUBJECT_MARKS: Final = re.compile(
    r"undeliver|delivery status notification \((?:failure|delay)\)|mail delivery fail"
    r"|returned mail|failure notice|delivery fail|could not be delivered|delivery has failed"
    r"|delayed mail|warning: could not send|mail system error|non remis|unzustellbar",
    re.I,
)
_BODY_MARKS: Final = re.compile(
    r"this is the qmail-send program|delivery has failed to these recipients"
    r"|could not be delivered to one or more|the following address(?:\(es\))? failed"
    r"|this is the mail system at host|permanent fatal errors|wasn't able to deliver"
    r"|message (?:couldn't|could not|wasn't|was not) (?:be )?delivered"
    r"|delivery to the following recipients? failed|undeliverable|is still being retried",
    re.I,
)
_DAEMONS: Final = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})

# Where a quoted copy of the returned message begins: the text after it is not the report.
_COPY_MARKS: Final = re.compile(
    r"^[ \t]*(?:-+ ?below this line is a copy of the message"
    r"|-+ ?this is a copy of the message"
    r"|original message headers:"
    r"|-+ ?original message ?-+"
    r"|-+ ?the header of the original message"
    r"|(?:return-path|received|message-id|dkim-signature)[ \t]*:)",
    re.I | re.M,
)

_ADDR: Final = r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+"
# "<user@host>: ..." or "<user@host>... User unknown" at the start of a line (Postfix text,
# qmail, sendmail); indented ones are continuation lines that quote the address again.
_ANGLED_LINE: Final = re.compile(rf"^<({_ADDR})>[ \t]*(?::|\.\.\.)?[ \t]*(.*)$")
# An address alone on its line, maybe indented, maybe "(addr)" after it (Exim, Exchange).
_BARE_LINE: Final = re.compile(rf"^[ \t]*<?({_ADDR})>?(?:[ \t]*\([^()\n]*\))?[ \t]*:?[ \t]*$")
_IN_SENTENCE: Final = re.compile(
    rf"(?:delivered to|delivery to|message to)[ \t]*:?[ \t]*<?({_ADDR})>?"
    r"(?=[ \t]+(?:because|couldn't|could not|failed|was not|wasn't|has failed)|[ \t]*[.:]?$)",
    re.I | re.M,
)
_MAX_DIAGNOSTIC_LINES: Final = 8


def _texts(message: Message, parts: list[Message]) -> list[str]:
    return [_text_body(p) for p in parts if p.get_content_type() == "text/plain"] or (
        [_text_body(message)] if message.get_content_maintype() == "text" else []
    )


def _before_copy(text: str) -> str:
    found = _COPY_MARKS.search(text)
    return text[: found.start()] if found else text


def _copy_of_original(text: str) -> str:
    found = _COPY_MARKS.search(text)
    return text[found.start() :] if found else ""


def _looks_like_bounce(message: Message, texts: list[str]) -> bool:
    subject = _header_text(message.get("Subject"))
    if _SUBJECT_MARKS.search(subject):
        return True
    name, address = parseaddr(_header_text(message.get("From")))
    if address.partition("@")[0].lower() in _DAEMONS or "mail delivery" in name.lower():
        return True
    return any(_BODY_MARKS.search(_before_copy(text)) for text in texts)


def _header_text(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))[:MAX_DETAIL]
    except Exception:  # a broken encoded-word: the raw value will do
        return _to_text(str(value))[:MAX_DETAIL]


@dataclass
class _Found:
    address: str
    lines: list[str]


def _addresses_in(text: str) -> list[_Found]:
    """Failed addresses named in a bounce's own words, each with the lines that follow it
    (its diagnostic) up to a blank line or the next address."""
    found: list[_Found] = []
    current: _Found | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        hit = _ANGLED_LINE.match(line) or _BARE_LINE.match(line)
        if hit is not None:
            rest = hit.group(2) if hit.re is _ANGLED_LINE else ""
            current = _Found(hit.group(1), [rest] if rest else [])
            found.append(current)
        elif not line.strip():
            current = None
        elif current is not None and len(current.lines) < _MAX_DIAGNOSTIC_LINES:
            current.lines.append(line.strip())
    for hit in _IN_SENTENCE.finditer(text):
        found.append(_Found(hit.group(1), []))
    return found


def _text_recipients(text: str) -> list[BouncedRecipient]:
    by_address: dict[str, BouncedRecipient] = {}
    for item in _addresses_in(text):
        diagnostic = " ".join(item.lines)[:MAX_DETAIL] or None
        status, code = _status_in(diagnostic), _reply_in(diagnostic)
        entry = BouncedRecipient(
            address=item.address,
            bounce_class=_class_of(status, code),
            status=status,
            smtp_code=code,
            diagnostic=diagnostic,
        )
        known = by_address.get(item.address.lower())
        # the same address named twice (Exchange: once for people, once for admins): keep
        # the first mention that carries a code
        if known is None or (not (known.status or known.smtp_code) and (status or code)):
            by_address[item.address.lower()] = entry
    return list(by_address.values())[:MAX_RECIPIENTS]


def _global_codes(text: str) -> tuple[str | None, int | None, str | None]:
    """A status and reply code stated anywhere in the report's text, with the line saying it:
    only the strong forms (a code with a status, or a status alone)."""
    both = _REPLY_WITH_STATUS.search(text)
    if both:
        line = _line_at(text, both.start())
        return both.group(2), int(both.group(1)), line
    status = _ENHANCED.search(text)
    if status:
        return ".".join(status.groups()), None, _line_at(text, status.start())
    return None, None, None


def _line_at(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return text[start : end if end >= 0 else len(text)].strip()[:MAX_DETAIL]


def _read_text_bounce(message: Message, parts: list[Message]) -> Report:
    texts = _texts(message, parts)
    content_type = message.get_content_type()
    report_type = collapse_rfc2231_value(message.get_param("report-type", "")).lower()
    declared = content_type == "multipart/report" and report_type == "delivery-status"
    if not declared and not _looks_like_bounce(message, texts):
        return Report(kind=ReportKind.UNKNOWN)
    own_words = "\n\n".join(_before_copy(text) for text in texts)
    recipients = _text_recipients(own_words)
    if not any(r.status or r.smtp_code for r in recipients):
        # nobody has a code of their own: a code stated once in the text is everyone's
        status, code, line = _global_codes(own_words)
        if status or code:
            bounce_class = _class_of(status, code)
            recipients = [
                BouncedRecipient(
                    address=r.address,
                    bounce_class=bounce_class,
                    status=status,
                    smtp_code=code,
                    diagnostic=r.diagnostic or line,
                )
                for r in recipients
            ] or [
                BouncedRecipient(None, bounce_class, status=status, smtp_code=code, diagnostic=line)
            ]
    if not recipients:
        recipients = [BouncedRecipient(address=None, bounce_class=BounceClass.SOFT)]
    return Report(kind=ReportKind.BOUNCE, recipients=tuple(recipients))
