"""Outgoing MIME: build a message from a :class:`~mailgate.domain.MessageDraft`, or accept
one a caller wrote (raw MIME) safely. Pure functions: no I/O.

:func:`build_message` lays the draft out as::

    multipart/mixed                      only with attachments
    ├── multipart/alternative            only with HTML
    │   ├── text/plain                   the text, or one derived from the HTML
    │   └── multipart/related            only with inline parts (content_id)
    │       ├── text/html
    │       └── image/png ...            Content-ID: <cid>, inline
    └── application/pdf ...              attachments

A text-only draft is a single text/plain part; inline parts without HTML to refer to them
travel as inline parts in multipart/mixed, Content-ID kept.

Every header that carries the caller's text is written here, not by ``email.headerregistry``:
Python before 3.11.10 (CVE-2024-6923) decodes an RFC 2047 encoded-word in a display name,
subject or filename while setting it and writes the decoded CR LF back out, so
``=?utf-8?q?x=0D=0ABcc:...?=`` becomes a new header line. Here non-ASCII text (and text that
merely looks like an encoded-word) is encoded into base64 encoded-words, plain ASCII is
folded at its own whitespace, filenames use RFC 2231, and the rendered header block is
checked to hold exactly the fields it was given. Bcc never becomes a header. The entities
are rendered here too (``_Part``): ``email.generator`` cost five times the rest of a build.

:func:`parse_raw_message` works on the header block only: it checks it line by line
(a bare CR or LF, NUL, other control characters or bad UTF-8 are refused), drops Bcc,
adds Message-ID and Date when they are missing and reattaches the body unchanged except
for line endings (CRLF everywhere, so no bare LF reaches DATA).
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import re
import secrets
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import quoprimime
from email.headerregistry import AddressHeader, HeaderRegistry
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from typing import Final

from email_validator import validate_email

from mailgate.delivery.html_text import html_to_text
from mailgate.domain import Attachment, Mailbox, MessageDraft
from mailgate.errors import Invalid, Issue, PayloadTooLarge
from mailgate.i18n import N_
from mailgate.validation import PLAIN_ADDRESS, check_email

__all__ = [
    "PROTECTED_HEADERS",
    "BuiltMessage",
    "ParsedSummary",
    "build_message",
    "html_to_text",
    "parse_raw_message",
]

# --- messages (msgids) ---------------------------------------------------------------

M_CONTROL: Final = N_("Must not contain line breaks or control characters.")
M_UNICODE: Final = N_("Must be valid Unicode text (no unpaired surrogates).")
M_ADDRESS: Final = N_("Must be a valid email address.")
M_HOST: Final = N_("Must be a valid host name.")
M_NO_RECIPIENTS: Final = N_("At least one recipient is required.")
M_HEADER_NAME: Final = N_(
    "Must be a header field name: printable ASCII characters without spaces or colons."
)
M_HEADER_PROTECTED: Final = N_("The {name} header is set by Mailgate and cannot be given.")
M_LINE_TOO_LONG: Final = N_("Must not contain a word longer than {max} characters.")
M_MIMETYPE: Final = N_("Must be a MIME type such as application/pdf, and not multipart.")
M_CONTENT_ID: Final = N_(
    "Must be a content id of letters, digits and symbols, without spaces or angle brackets."
)
M_UNSAFE: Final = N_("The message could not be built safely.")
M_RAW_TOO_LARGE: Final = N_("The message is larger than the limit of {max_bytes} bytes.")
M_RAW_CONTROL: Final = N_(
    "The message headers contain a bare CR or LF, a NUL or another control character."
)
M_RAW_UTF8: Final = N_("The message headers contain 8-bit bytes that are not valid UTF-8.")
M_RAW_SYNTAX: Final = N_("Line {line} of the message headers is not a header field.")
M_RAW_FROM: Final = N_("The message must have exactly one From header with one address.")
M_RAW_RECIPIENTS: Final = N_("The message has no recipients in its To, Cc or Bcc headers.")
M_RAW_ADDRESS: Final = N_("The message contains an invalid address: {address}")
M_RAW_FIELD_TOO_LONG: Final = N_("The {header} header is longer than {max} characters.")

# --- the rules -----------------------------------------------------------------------

PROTECTED_HEADERS: Final = frozenset(
    {"from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id"}
    | {"mime-version", "return-path", "received"}
)
"""Header names (lower case) a draft may not set; so are ``Content-*`` and ``Resent-*``."""
_PROTECTED_PREFIXES: Final = ("content-", "resent-")
_BCC_HEADERS: Final = frozenset({"bcc", "resent-bcc"})

_POLICY: Final = email.policy.SMTP.clone(cte_type="7bit", refold_source="none")
_POLICY_UTF8: Final = email.policy.SMTPUTF8.clone(cte_type="7bit", refold_source="none")
_FOLD_AT: Final = 78  # RFC 5322 2.1.1: SHOULD
_MAX_LINE: Final = 998  # ... and MUST
_LONG_WORD: Final = 60  # longer words go as encoded-words, which can be split anywhere
_MAX_ADDRESS_FIELD: Final = 16_384  # the stdlib address parser is quadratic: ~600 addresses
_EW_BYTES: Final = 42  # UTF-8 bytes per encoded-word: 56 base64 characters, 68 in all
_EW_BYTES_NAME: Final = 45  # the most one encoded-word holds (72): names split rarely

_FIELD_NAME: Final = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext
_UNSAFE_TEXT: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # TAB is fine
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_PLAIN_ASCII: Final = re.compile(r"[ -~]*")
_ATOMS: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_TOKENS: Final = re.compile(r"[ \t]*[^ \t]+|[ \t]+")
_MIMETYPE: Final = re.compile(
    r"([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)/([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)"
)
_CONTENT_ID: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,250}")
_HOST: Final = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_ENVELOPE: Final = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")

_RAW_FIELD: Final = re.compile(rb"([!-9;-~]+):")
_RAW_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_RAW_LINE_ENDINGS: Final = re.compile(rb"\r\n|\r|\n")
_REGISTRY: Final = HeaderRegistry()
_PLAIN_NAME: Final = r"[A-Za-z0-9_'-]+(?: [A-Za-z0-9_'-]+)*"
_SIMPLE_MAILBOX: Final = re.compile(
    rf"[ \t]*(?:(?:({_PLAIN_NAME})[ \t]*)?<({PLAIN_ADDRESS})>|({PLAIN_ADDRESS}))[ \t]*"
)
_PLAIN_SUBJECT: Final = re.compile(r"[ -~]*")  # printable ASCII: the registry keeps it as is


@dataclass(frozen=True)
class BuiltMessage:
    """A complete message, ready for DATA, and the envelope to send it with."""

    raw: bytes  # CRLF line endings throughout
    message_id: str  # with angle brackets, as in the header
    envelope_from: str  # the sender's bare address, domain IDNA-encoded
    recipients: tuple[str, ...]  # to + cc + bcc, de-duplicated case-insensitively, in order
    smtputf8: bool  # an address (or a raw message's headers) needs SMTPUTF8 (RFC 6531)


@dataclass(frozen=True)
class ParsedSummary:
    """What a raw message says about itself, decoded; addresses as the headers write them."""

    sender: Mailbox
    to: tuple[Mailbox, ...] = ()
    cc: tuple[Mailbox, ...] = ()
    bcc: tuple[Mailbox, ...] = ()
    subject: str = ""


# --- building ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Address:
    envelope: str  # local@domain, the domain IDNA-encoded
    header: str  # the mailbox as a header writes it
    utf8: bool  # the local part is not ASCII


@dataclass
class _Checks:
    """Issues found so far; every check adds to it and the build raises them all at once."""

    issues: list[Issue] = field(default_factory=list)

    def add(self, where: str, message: str, code: str = "invalid", /, **params: object) -> None:
        self.issues.append(Issue(where, message, code, params))

    def text(self, name: str, value: str) -> bool:
        """True when ``value`` is safe in a header: no line breaks, controls or surrogates."""
        if _SURROGATE.search(value):
            self.add(name, M_UNICODE)
            return False
        if _UNSAFE_TEXT.search(value):
            self.add(name, M_CONTROL)
            return False
        return True


def build_message(
    draft: MessageDraft, *, message_id_domain: str | None = None, now: datetime | None = None
) -> BuiltMessage:
    """The draft as MIME, with its envelope. Raises :class:`Invalid` listing every problem
    (field names: ``from.name``, ``to.0.address``, ``subject``, ``headers.<Name>``,
    ``attachments.0.filename``, ...)."""
    checks = _Checks()
    sender = _address(checks, "from", draft.sender)
    groups = {
        kind: [_address(checks, f"{kind}.{i}", box) for i, box in enumerate(boxes)]
        for kind, boxes in (
            ("to", draft.to),
            ("cc", draft.cc),
            ("bcc", draft.bcc),
            ("reply_to", draft.reply_to),
        )
    }
    if not draft.recipients:
        checks.add("to", M_NO_RECIPIENTS, "required")
    subject = _subject(checks, draft.subject)
    custom = _custom_headers(checks, draft.headers)
    id_domain = _message_id_domain(checks, message_id_domain, sender.envelope if sender else None)
    for where, body in (("text", draft.text), ("html", draft.html)):
        if body is not None and not body.isascii() and _SURROGATE.search(body):
            checks.add(where, M_UNICODE)
    parts = [_attachment_part(checks, i, a) for i, a in enumerate(draft.attachments)]
    if checks.issues:
        raise Invalid(checks.issues)
    assert sender is not None and id_domain is not None
    to, cc, bcc, reply_to = (
        [a for a in groups[kind] if a is not None] for kind in ("to", "cc", "bcc", "reply_to")
    )
    addresses = [sender, *to, *cc, *bcc, *reply_to]
    smtputf8 = any(a.utf8 for a in addresses)

    message_id = make_msgid(domain=id_domain)
    top: list[tuple[str, str]] = [("From", sender.header)]
    top += [("To", ", ".join(a.header for a in to))] if to else []
    top += [("Cc", ", ".join(a.header for a in cc))] if cc else []
    top += [("Reply-To", ", ".join(a.header for a in reply_to))] if reply_to else []
    top += [("Subject", subject), ("Date", _date(now)), ("Message-ID", message_id)]
    top += [("MIME-Version", "1.0"), *custom]
    head: list[tuple[str, str]] = []
    for name, value in top:
        folded = _fold(name, value)
        if folded is None:  # only an address or the message id can get here
            raise Invalid.field("mime", M_UNSAFE)
        head.append((name, folded))
    content = _body(draft, [p for p in parts if p is not None])
    raw = _Part([*head, *content.headers], content.body, content.subtype, content.parts).render()
    if not _is_exactly(raw, [name for name, _ in head] + [name for name, _ in content.headers]):
        raise Invalid.field("mime", M_UNSAFE)
    return BuiltMessage(
        raw=raw,
        message_id=message_id,
        envelope_from=sender.envelope,
        recipients=_unique(a.envelope for a in (*to, *cc, *bcc)),
        smtputf8=smtputf8,
    )


def _address(checks: _Checks, name: str, mailbox: Mailbox) -> _Address | None:
    display = mailbox.name or ""
    found = _mailbox(display, mailbox.address)
    if found is None:  # say what is wrong with it
        checks.text(f"{name}.name", display)
        if _address_parts(mailbox.address) is None:
            checks.add(f"{name}.address", M_ADDRESS)
    return found


@lru_cache(maxsize=4096)
def _mailbox(display: str, address: str) -> _Address | None:
    """The mailbox as the envelope and a header write it; None when either part is unusable.
    Kept for the next message: most mail comes from a few senders (7 us a mailbox)."""
    if _SURROGATE.search(display) or _UNSAFE_TEXT.search(display):
        return None
    parts = _address_parts(address)
    if parts is None:
        return None
    local, domain = parts
    envelope = f"{local}@{domain}"
    header = f"{_phrase(display)} <{envelope}>" if display else envelope
    return _Address(envelope=envelope, header=header, utf8=not local.isascii())


def _address_parts(address: str) -> tuple[str, str] | None:
    """(local part, IDNA-encoded domain) of a valid address, or None."""
    try:
        normalized = check_email(address)
        local, _, domain = normalized.rpartition("@")
        if not domain.isascii():  # same options as check_email, for the A-label form
            domain = validate_email(
                normalized,
                check_deliverability=False,
                allow_smtputf8=True,
                globally_deliverable=False,
                test_environment=True,
            ).ascii_domain
    except ValueError:  # EmailNotValidError and UnicodeError are ValueErrors
        return None
    envelope = f"{local}@{domain}"
    if not _ENVELOPE.fullmatch(envelope) or _UNSAFE_TEXT.search(envelope):
        return None
    return local, domain


def _phrase(text: str) -> str:
    """A display name for a header: atoms as they are; other ASCII as a quoted string (which
    keeps its white space); the rest (and encoded-word lookalikes) as encoded-words."""
    if not _PLAIN_ASCII.fullmatch(text) or "=?" in text or _has_long_word(text):
        return " ".join(_encoded_words(text, _EW_BYTES_NAME))
    if _ATOMS.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _subject(checks: _Checks, subject: str) -> str:
    if not checks.text("subject", subject):
        return ""
    return " ".join(_encoded_words(subject)) if _needs_encoding(subject) else subject


def _needs_encoding(text: str) -> bool:
    """Whether ``text`` must travel as encoded-words to arrive exactly as it is."""
    return (
        not _PLAIN_ASCII.fullmatch(text)
        or "=?" in text  # would be decoded as an encoded-word
        or text != text.strip()  # leading white space is lost in unfolding
        or "  " in text
        or _has_long_word(text)  # no room to fold
    )


def _has_long_word(text: str) -> bool:
    return any(len(word) > _LONG_WORD for word in text.split(" "))


def _encoded_words(text: str, size: int = _EW_BYTES) -> list[str]:
    """RFC 2047 base64 encoded-words of at most ``size`` UTF-8 bytes each (45 make 72
    characters, under the limit of 75), split between characters, after a space if one is
    near: decoders drop the white space between encoded-words, but Python's adds it back
    in display names, so a split at a space at least leaves the text readable there."""
    chunks: list[str] = []
    chunk = ""
    for char in text:
        if chunk and len((chunk + char).encode("utf-8")) > size:
            cut = chunk.rfind(" ") + 1
            if 0 < cut < len(chunk) and len((chunk[cut:] + char).encode("utf-8")) <= size // 2:
                chunks.append(chunk[:cut])
                chunk = chunk[cut:]
            else:
                chunks.append(chunk)
                chunk = ""
        chunk += char
    if chunk:
        chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c.encode()).decode('ascii')}?=" for c in chunks]


def _fold(name: str, value: str) -> str | None:
    """``value`` folded at its own white space (before a space or tab, never adding any),
    lines joined with CRLF; None when a word is too long for the 998-character limit."""
    if len(name) + 2 + len(value) <= _FOLD_AT:  # fits on its line: the common case
        return value
    lines: list[str] = []
    line = ""
    width = len(name) + 2  # "Name: "
    for token in _TOKENS.findall(value):
        if line and token.strip() and token[0] in " \t" and width + len(token) > _FOLD_AT:
            lines.append(line)
            line, width = "", 0
        line += token
        width += len(token)
        if width > _MAX_LINE:
            return None
    lines.append(line)
    return "\r\n".join(lines)


def _custom_headers(checks: _Checks, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        where = f"headers.{name}"
        key = name.lower()
        if not _FIELD_NAME.fullmatch(name):
            checks.add(where, M_HEADER_NAME)
        elif key in PROTECTED_HEADERS or key.startswith(_PROTECTED_PREFIXES):
            checks.add(where, M_HEADER_PROTECTED, "protected", name=name)
        elif checks.text(where, value):
            # ASCII values go as written (a List-Unsubscribe URL must not become an
            # encoded-word); others as encoded-words, as unstructured text.
            text = value if value.isascii() else " ".join(_encoded_words(value))
            if _fold(name, text) is None:
                checks.add(where, M_LINE_TOO_LONG, max=_MAX_LINE - len(name) - 2)
            else:
                kept.append((name, text))
    return kept


def _message_id_domain(checks: _Checks, configured: str | None, sender: str | None) -> str | None:
    """The configured domain (IDNA-encoded), else the sender's, else ``localhost``."""
    if configured is None:
        domain = sender.rpartition("@")[2] if sender else "localhost"
        return domain if _HOST.fullmatch(domain) else "localhost"
    try:
        domain = configured.strip().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    if not _HOST.fullmatch(domain):
        checks.add("message_id_domain", M_HOST)
        return None
    return domain


def _date(now: datetime | None) -> str:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Keyed by the offset too: 12:00Z equals 14:00+02:00, but the header says which.
    return _rfc5322_date(moment.replace(microsecond=0), moment.utcoffset())


@lru_cache(maxsize=8)
def _rfc5322_date(moment: datetime, _offset: timedelta | None) -> str:
    """Formatted once per second (the header's precision), not once per message."""
    return format_datetime(moment)


def _attachment_part(checks: _Checks, index: int, attachment: Attachment) -> _Part | None:
    where = f"attachments.{index}"
    ok = checks.text(f"{where}.filename", attachment.filename)
    mimetype = _MIMETYPE.fullmatch(attachment.mimetype)
    if mimetype is None or mimetype.group(1).lower() == "multipart":
        checks.add(f"{where}.mimetype", M_MIMETYPE)
        ok = False
    cid = attachment.content_id
    if cid is not None:
        cid = cid.removeprefix("<").removesuffix(">")
        if not _CONTENT_ID.fullmatch(cid):
            checks.add(f"{where}.content_id", M_CONTENT_ID)
            ok = False
    if not ok or mimetype is None:
        return None
    maintype, subtype = mimetype.group(1).lower(), mimetype.group(2).lower()
    headers = [
        ("Content-Type", f"{maintype}/{subtype}"),
        ("Content-Transfer-Encoding", "base64"),
        (
            "Content-Disposition",
            _disposition("inline" if cid else "attachment", attachment.filename),
        ),
    ]
    if cid is not None:
        headers.append(("Content-ID", f"<{cid}>"))
    return _Part(headers, _base64_lines(attachment.content))


def _disposition(kind: str, filename: str) -> str:
    """``attachment; filename=...``: a quoted string when plain ASCII, else RFC 2231
    (UTF-8, percent-encoded, in continuations of at most 60 characters)."""
    if not filename:
        return kind
    if not _needs_encoding(filename) and len(filename) <= 60:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'{kind};\r\n filename="{quoted}"'
    encoded = urllib.parse.quote(filename, safe="")
    chunks = re.findall(r"(?:%[0-9A-F]{2}|[^%]){1,20}", encoded)  # never splits a %XX
    if len(chunks) == 1:
        return f"{kind};\r\n filename*=utf-8''{encoded}"
    charset = "utf-8''"
    params = [f"filename*{i}*={charset if i == 0 else ''}{c}" for i, c in enumerate(chunks)]
    return kind + "".join(f";\r\n {p}" for p in params)


@dataclass
class _Part:
    """A MIME entity: header fields (values ready to write) and a body, or, when
    ``subtype`` is set, a multipart of ``parts``."""

    headers: list[tuple[str, str]]
    body: bytes = b""  # CRLF line endings, encoded for 7-bit transport
    subtype: str | None = None
    parts: list[_Part] = field(default_factory=list)

    def render(self) -> bytes:
        out: list[bytes] = []
        self._render(out)
        return b"".join(out)

    def _render(self, out: list[bytes]) -> None:
        for name, value in self.headers:
            out.append(f"{name}: {value}\r\n".encode())
        if self.subtype is None:
            out += [b"\r\n", self.body]
            return
        children: list[bytes] = []
        for part in self.parts:
            children.append(part.render())
        boundary = _boundary(children)
        out.append(
            f'Content-Type: multipart/{self.subtype};\r\n boundary="{boundary}"\r\n\r\n'.encode()
        )
        delimiter = b"--" + boundary.encode()
        for child in children:
            out += [delimiter, b"\r\n", child, b"\r\n"]
        out += [delimiter, b"--\r\n"]


def _boundary(children: Sequence[bytes]) -> str:
    while True:
        boundary = "=_mg_" + secrets.token_hex(16)
        if not any(boundary.encode() in child for child in children):
            return boundary


def _body(draft: MessageDraft, attachments: list[_Part]) -> _Part:
    inline = [p for p, a in zip(attachments, draft.attachments, strict=True) if a.inline]
    files = [p for p, a in zip(attachments, draft.attachments, strict=True) if not a.inline]
    if draft.html is None:
        body = _text_part(draft.text or "", "plain")
        files = attachments  # nothing refers to the inline parts: they ride along
    else:
        text = draft.text if draft.text is not None else html_to_text(draft.html)
        html = _text_part(draft.html, "html")
        if inline:
            html = _Part([], subtype="related", parts=[html, *inline])
        body = _Part([], subtype="alternative", parts=[_text_part(text, "plain"), html])
    if files:
        body = _Part([], subtype="mixed", parts=[body, *files])
    return body


def _text_part(text: str, subtype: str) -> _Part:
    encoding, body = _encode_text(text)
    headers = [
        ("Content-Type", f'text/{subtype}; charset="utf-8"'),
        ("Content-Transfer-Encoding", encoding),
    ]
    return _Part(headers, body)


def _encode_text(text: str) -> tuple[str, bytes]:
    """UTF-8 text as 7bit when it is short-lined ASCII, else as quoted-printable or base64,
    whichever is shorter for its first lines (``email.contentmanager``'s rule)."""
    lines = text.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n" if lines else b""
    if body.isascii() and max(map(len, lines), default=0) <= _FOLD_AT:
        return "7bit", body
    sniff = b"".join(line + b"\r\n" for line in lines[:10])
    if len(quoprimime.body_encode(sniff.decode("latin-1"), _FOLD_AT)) > len(
        binascii.b2a_base64(sniff)
    ):
        return "base64", _base64_lines(body)
    encoded = quoprimime.body_encode(body.decode("latin-1"), _FOLD_AT, eol="\r\n")
    return "quoted-printable", encoded.encode("ascii")  # ends with CRLF, as ``body`` does


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters (57 bytes each), CRLF-terminated."""
    return b"".join(
        binascii.b2a_base64(data[i : i + 57], newline=False) + b"\r\n"
        for i in range(0, len(data), 57)
    )


def _is_exactly(raw: bytes, names: Sequence[str]) -> bool:
    """Whether ``raw`` has no bare CR or LF and its header block has exactly the fields
    ``names``, in order: no value broke out of its field (whatever it contained)."""
    if not raw.count(b"\r") == raw.count(b"\n") == raw.count(b"\r\n"):
        return False
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    found = b"\n".join(
        line.split(b":", 1)[0] for line in head if line[:1] not in (b" ", b"\t")
    ).lower()
    expected = "\n".join(names).lower().encode()
    last = b"\ncontent-type"
    if (b"\n" + found).endswith(last) and not (b"\n" + expected).endswith(last):
        expected += last  # a multipart body's, written by the renderer
    return found == expected and not _BCC_HEADERS.intersection(found.decode().split("\n"))


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.casefold(), address)
    return tuple(seen.values())


# --- raw MIME ------------------------------------------------------------------------


@dataclass
class _Field:
    name: str
    lines: list[str]  # as written, without line endings; continuation lines start with WSP

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def value(self) -> str:
        """The unfolded value, without the name and surrounding white space."""
        return "".join(self.lines)[len(self.name) + 1 :].strip(" \t")


def parse_raw_message(
    raw: bytes,
    *,
    max_bytes: int,
    message_id_domain: str | None = None,
    now: datetime | None = None,
    trace: str | None = None,
    header_recipients: bool = True,
) -> tuple[BuiltMessage, ParsedSummary]:
    """A caller's complete message, checked and ready for DATA: Bcc removed, Message-ID and
    Date added if missing, the body kept as it was (line endings made CRLF).

    ``trace``: a header line (a relay's ``Received:``) put on top. ``header_recipients=False``:
    the envelope names the recipients (SMTP), so the headers need not name any.

    Raises :class:`PayloadTooLarge` over ``max_bytes``, else :class:`Invalid` (field
    ``mime``) for what cannot be sent safely."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(Issue("mime", M_RAW_TOO_LARGE, "too_large", {"max_bytes": max_bytes}))
    fields, body = _split_raw(raw)
    senders = [f for f in fields if f.key == "from"]
    if len(senders) != 1:
        raise Invalid.field("mime", M_RAW_FROM)
    sender_boxes = _mailboxes(senders)
    if len(sender_boxes) != 1:
        raise Invalid.field("mime", M_RAW_FROM)
    lists = {kind: _mailboxes([f for f in fields if f.key == kind]) for kind in ("to", "cc", "bcc")}
    recipients = (*lists["to"], *lists["cc"], *lists["bcc"])
    if not recipients and header_recipients:
        raise Invalid.field("mime", M_RAW_RECIPIENTS)
    subjects = [f for f in fields if f.key == "subject"]
    subject = _raw_subject(subjects[0].value) if subjects else ""
    summary = ParsedSummary(
        sender=sender_boxes[0][0],
        to=tuple(box for box, _ in lists["to"]),
        cc=tuple(box for box, _ in lists["cc"]),
        bcc=tuple(box for box, _ in lists["bcc"]),
        subject=subject,
    )

    kept = [f for f in fields if f.key not in _BCC_HEADERS]
    ids = [f for f in kept if f.key == "message-id" and f.value]
    kept = [f for f in kept if f.key != "message-id" or f.value]
    added: list[str] = []
    if ids:
        message_id = ids[0].value
    else:
        checks = _Checks()
        domain = _message_id_domain(checks, message_id_domain, sender_boxes[0][1])
        if domain is None:
            raise Invalid(checks.issues)
        message_id = make_msgid(domain=domain)
        added.append(f"Message-ID: {message_id}")
    if not any(f.key == "date" for f in kept):
        added.append(f"Date: {_date(now)}")
    lines = ([trace] if trace else []) + [line for f in kept for line in f.lines] + added
    header = "".join(line + "\r\n" for line in lines).encode("utf-8")
    envelope = [sender_boxes[0][1], *(address for _, address in recipients)]
    return (
        BuiltMessage(
            raw=header + b"\r\n" + _RAW_LINE_ENDINGS.sub(b"\r\n", body),
            message_id=message_id,
            envelope_from=sender_boxes[0][1],
            recipients=_unique(address for _, address in recipients),
            smtputf8=not header.isascii() or not all(a.isascii() for a in envelope),
        ),
        summary,
    )


def _split_raw(raw: bytes) -> tuple[list[_Field], bytes]:
    """The header fields and the body (as given). Every header line must end like the
    first one (CRLF, or LF throughout): anything else is a bare CR or LF."""
    fields: list[_Field] = []
    crlf: bool | None = None
    position = number = 0
    while position < len(raw):
        end = raw.find(b"\n", position)
        if end < 0:
            line, position = raw[position:], len(raw)
        else:
            line, position = raw[position:end], end + 1
            ends_crlf = line.endswith(b"\r")
            crlf = ends_crlf if crlf is None else crlf
            if ends_crlf != crlf:
                raise Invalid.field("mime", M_RAW_CONTROL)
            line = line.removesuffix(b"\r") if crlf else line
        number += 1
        if not line:
            return fields, raw[position:]
        if _RAW_CONTROL.search(line):
            raise Invalid.field("mime", M_RAW_CONTROL)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid.field("mime", M_RAW_UTF8) from None
        if _UNSAFE_TEXT.search(text):  # C1 controls, U+2028/U+2029
            raise Invalid.field("mime", M_RAW_CONTROL)
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].lines.append(text)
            continue
        match = _RAW_FIELD.match(line)
        if match is None:
            raise Invalid.field("mime", M_RAW_SYNTAX, line=number)
        fields.append(_Field(match.group(1).decode("ascii"), [text]))
    return fields, b""


def _raw_subject(value: str) -> str:
    if "=?" not in value and _PLAIN_SUBJECT.fullmatch(value):
        return value
    return _safe(str(_REGISTRY("subject", value)))


def _simple_mailboxes(value: str) -> list[tuple[str | None, str]] | None:
    """(name, address) of each entry of an address field written plainly (``a@b.c`` or
    ``Plain Name <a@b.c>``, comma-separated), as the header registry would read them; None
    for anything else (quotes, comments, encoded words, groups, non-ASCII...), which the
    registry then parses. Most mail is written plainly, and the registry is slow."""
    found: list[tuple[str | None, str]] = []
    for entry in value.split(","):
        match = _SIMPLE_MAILBOX.fullmatch(entry)
        if match is None:
            return None
        name, bracketed, bare = match.groups()
        found.append((name, bracketed or bare))
    return found


def _mailboxes(fields: Sequence[_Field]) -> list[tuple[Mailbox, str]]:
    """Each mailbox in these address fields, with its envelope address."""
    found: list[tuple[Mailbox, str]] = []
    for header_field in fields:
        value = header_field.value
        if len(value) > _MAX_ADDRESS_FIELD:
            raise Invalid.field(
                "mime", M_RAW_FIELD_TOO_LONG, header=header_field.name, max=_MAX_ADDRESS_FIELD
            )
        simple = _simple_mailboxes(value)
        if simple is not None:
            for name, spec in simple:
                parts = _address_parts(spec)
                if parts is None:
                    raise Invalid.field("mime", M_RAW_ADDRESS, address=spec)
                found.append((Mailbox(address=spec, name=name), f"{parts[0]}@{parts[1]}"))
            continue
        try:
            header = _REGISTRY(header_field.key, value)
        except Exception:  # the stdlib parser has raised many kinds on malformed input
            raise Invalid.field("mime", M_RAW_ADDRESS, address=value) from None
        if not isinstance(header, AddressHeader):  # from, to, cc and bcc always are
            raise Invalid.field("mime", M_RAW_ADDRESS, address=value)
        for address in header.addresses:
            spec = address.addr_spec
            parts = _address_parts(spec) if address.username and address.domain else None
            if parts is None:
                raise Invalid.field("mime", M_RAW_ADDRESS, address=spec or value)
            name = _safe(address.display_name) or None
            found.append((Mailbox(address=spec, name=name), f"{parts[0]}@{parts[1]}"))
    return found


def _safe(decoded: str) -> str:
    """Decoded header text, refused when an encoded-word hid a line break or a control
    character in it: an injection attempt like a raw one."""
    if _UNSAFE_TEXT.search(decoded) or _SURROGATE.search(decoded):
        raise Invalid.field("mime", M_RAW_CONTROL)
    return decoded
