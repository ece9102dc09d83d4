"""What every surface that accepts mail shares: field types for message parts, base64
attachments, ``"Name <a@b>"`` addresses, instants and schedules, and error paths.

Each surface keeps its own field names; these helpers take the caller's field name and put
it in the :class:`~mailgate.errors.Invalid` they raise.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import mimetypes
import re
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from functools import lru_cache
from typing import Annotated, Any, Final

from pydantic import AfterValidator, StringConstraints

from mailgate.domain import Mailbox
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.validation import check_email, check_no_control_chars

__all__ = [
    "MAX_RECIPIENTS_PER_FIELD",
    "MAX_SCHEDULE_AHEAD",
    "Filename",
    "HeaderValue",
    "MetaValue",
    "Subject",
    "Tag",
    "at_most",
    "check_meta_keys",
    "decode_base64",
    "encode_text",
    "guess_mimetype",
    "mailbox_of_header",
    "parse_instant",
    "parse_mailbox",
    "parse_mailbox_list",
    "prefixed",
    "schedule",
]

MAX_RECIPIENTS_PER_FIELD: Final = 100
MAX_SCHEDULE_AHEAD: Final = timedelta(days=30)

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_ANGLE_ADDR: Final = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<address>[^<>]*)>\s*$", re.DOTALL)
_BASE64: Final = re.compile(r"^[A-Za-z0-9+/\s]*={0,2}\s*$")
_LOCAL_TIME: Final = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?"
    r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)


Subject = Annotated[str, StringConstraints(max_length=998), AfterValidator(check_no_control_chars)]
HeaderValue = Annotated[
    str, StringConstraints(max_length=4096), AfterValidator(check_no_control_chars)
]
Filename = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(check_no_control_chars)
]
Tag = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(check_no_control_chars)
]
MetaValue = Annotated[str, StringConstraints(max_length=1024)]


def check_meta_keys(values: dict[str, str] | None) -> dict[str, str] | None:
    """Metadata keys: 1 to 128 characters, no control characters. (Checked on the object:
    pydantic would name a bad key ``metadata.<key>.[key]``.)"""
    for key in values or {}:
        if not 1 <= len(key) <= 128 or _CONTROL.search(key):
            raise ValueError(N_("Keys must be 1 to 128 characters without control characters."))
    return values


def at_most(limit: int, message: str) -> AfterValidator:
    """A list (or object) validator: at most ``limit`` items, else ``message`` (a msgid)."""

    def check(items: Any) -> Any:
        if items is not None and len(items) > limit:
            raise ValueError(message)
        return items

    return AfterValidator(check)


def decode_base64(value: str, field: str) -> bytes:
    """Standard base64 (line breaks allowed, as MIME wraps it); anything else is a 400."""
    if not _BASE64.match(value):
        raise Invalid.field(field, N_("Must be valid base64."), "invalid_base64")
    compact = "".join(value.split())
    if len(compact) % 4:
        raise Invalid.field(field, N_("Must be valid base64."), "invalid_base64")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid.field(field, N_("Must be valid base64."), "invalid_base64") from exc


def encode_text(value: str, field: str) -> bytes:
    """A message given as a JSON string, as bytes: UTF-8, or the bytes a client smuggled in as
    lone surrogates (Python's ``surrogateescape``)."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise Invalid.field(field, N_("Must be valid UTF-8 text."), "invalid_encoding") from exc


def guess_mimetype(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def parse_mailbox(text: str, field: str) -> Mailbox:
    """``a@b``, ``<a@b>`` or ``Name <a@b>`` (the name may be quoted) as a mailbox."""
    try:
        check_no_control_chars(text)
        match = _ANGLE_ADDR.match(text)
        if match is None:
            name, address = "", text.strip()
        else:
            name, address = _unquote(match.group("name").strip()), match.group("address").strip()
        if "<" in name or ">" in name:
            raise ValueError(N_("Must be a valid email address."))
        return Mailbox(address=check_email(address), name=name or None)
    except ValueError as exc:
        raise Invalid.field(field, str(exc), "invalid_email") from exc


def parse_mailbox_list(text: str, field: str) -> list[Mailbox]:
    """A header value listing addresses (``a@b, "Doe, J" <c@d>``) as mailboxes."""
    try:
        check_no_control_chars(text)
        pairs = getaddresses([text])
        if not pairs:
            raise ValueError(text)
        return [Mailbox(address=check_email(a), name=n or None) for n, a in pairs]
    except ValueError as exc:
        raise Invalid.field(field, N_("Must be a valid email address."), "invalid_email") from exc


@lru_cache(maxsize=1024)
def mailbox_of_header(value: str) -> Mailbox:
    """A stored ``From`` header (``formataddr`` output, maybe RFC 2047) as a mailbox (cached:
    most mail comes from a few senders, and each answer about a message names its sender)."""
    name, address = parseaddr(value)
    if name:
        with contextlib.suppress(LookupError, UnicodeDecodeError, ValueError):
            name = str(make_header(decode_header(name)))
    return Mailbox(address=address or value, name=name or None)


def parse_instant(text: str, field: str, *, require_zone: bool = False) -> datetime:
    """ISO 8601 (``2026-01-02T15:04:05Z``, ``2026-01-02 15:04:05 +1200``, ``2026-01-02``) or
    RFC 2822 (``Mon, 02 Jan 2006 15:04:05 -0700``) as an aware UTC datetime. Without a zone
    it is UTC, unless ``require_zone``."""
    value = text.strip()
    match = _LOCAL_TIME.match(value)
    parsed: datetime | None = None
    if match is not None:
        zone = match.group("zone") or ""
        if zone and zone != "Z" and ":" not in zone:
            zone = f"{zone[:3]}:{zone[3:]}"
        iso = match.group("date") + "T" + (match.group("time") or "00:00") + zone
        try:
            parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    else:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
    if parsed is None:
        raise Invalid.field(
            field, N_("Must be a date and time such as 2026-01-31T09:30:00Z."), "invalid_datetime"
        )
    if parsed.tzinfo is None:
        if require_zone:
            raise Invalid.field(
                field, N_("Must include a time zone, such as Z or +02:00."), "invalid_datetime"
            )
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59:59-12:00 is past datetime.max in UTC
        raise Invalid.field(
            field, N_("Must be a date and time such as 2026-01-31T09:30:00Z."), "invalid_datetime"
        ) from exc


def schedule(instant: datetime | None, field: str, now: datetime) -> datetime | None:
    """When to send: None (now) for no time or a past one; refused beyond the horizon."""
    if instant is None or instant <= now:
        return None
    if instant > now + MAX_SCHEDULE_AHEAD:
        raise Invalid.field(
            field,
            N_("Must be at most {days} days ahead."),
            "out_of_range",
            days=MAX_SCHEDULE_AHEAD.days,
        )
    return instant


def prefixed(exc: Invalid, prefix: str) -> Invalid:
    """The same error with every field under ``prefix`` (``messages.3.`` + ``to.0.email``)."""
    return exc.renamed(lambda field: f"{prefix}{field}" if field else prefix.rstrip("."))
