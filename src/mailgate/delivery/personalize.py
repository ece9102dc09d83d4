"""Each recipient's own copy of a tracked or unsubscribable message. Pure: no I/O.

The stored MIME stays as the caller gave it; delivery makes one copy per recipient that

- carries ``List-Unsubscribe: <https://.../u/<token>>`` and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058) unless the message is
  transactional or has a List-Unsubscribe header of its own (the caller runs its own list);
- with click tracking, has every ``<a href="http(s)://...">`` of its HTML parts pointed at
  ``/t/c/<token>`` (mailto:, tel:, #anchors and other schemes are left alone);
- with open tracking, has a 1x1 image ``/t/o/<token>.gif`` before ``</body>``.

Only ``text/html`` parts that are not attachments are rewritten; text parts, attachments and
the headers are kept byte for byte. A copy that only gains the two headers is the stored
bytes with two lines in front: no MIME parsing at all.
"""

from __future__ import annotations

import email.policy
import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Final
from urllib.parse import urlsplit

from mailgate.services.tracking_tokens import TokenKind, TrackingSigner

__all__ = ["Engagement", "Personalizer", "rewrite_html", "tracking_base"]

# Parse and write back without refolding what was there: only the rewritten parts change.
_POLICY: Final = email.policy.SMTP.clone(cte_type="8bit", refold_source="none")
_ANCHOR: Final = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF: Final = re.compile(
    r"""(\bhref\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE | re.DOTALL
)
_WEB_LINK: Final = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_BODY_END: Final = re.compile(r"</body\s*>", re.IGNORECASE)
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_LIST_UNSUBSCRIBE: Final = re.compile(rb"(?:^|\n)list-unsubscribe[ \t]*:", re.IGNORECASE)


@dataclass(frozen=True)
class Engagement:
    """What a message gets per recipient (resolved when it was accepted)."""

    track_opens: bool = False
    track_clicks: bool = False
    list_unsubscribe: bool = False

    @property
    def per_recipient(self) -> bool:
        """Each recipient needs a copy of its own (one SMTP transaction each)."""
        return self.track_opens or self.track_clicks or self.list_unsubscribe


def tracking_base(public_url: str, tracking_domain: str | None) -> str:
    """Where links point: the provider's tracking domain (HTTPS) or the gateway's own URL."""
    if tracking_domain:
        return f"https://{tracking_domain.strip().rstrip('.').lower()}"
    return public_url.rstrip("/")


def rewrite_html(html_text: str, *, click: TrackLink | None, pixel: str | None) -> str:
    """The HTML with web links sent through ``click`` and the ``pixel`` image added."""
    if click is not None:
        html_text = _ANCHOR.sub(lambda tag: _rewrite_anchor(tag.group(0), click), html_text)
    if pixel is not None:
        image = (
            f'<img src="{html.escape(pixel, quote=True)}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0" />'
        )
        ends = list(_BODY_END.finditer(html_text))
        if ends:
            at = ends[-1].start()
            html_text = html_text[:at] + image + html_text[at:]
        else:
            html_text += image
    return html_text


class TrackLink:
    """Turns a link into its tracked form, or None to leave it (a URL too long to sign)."""

    def __init__(self, signer: TrackingSigner, base: str, message_id: int, recipient: str):
        self._signer, self._base = signer, base
        self._message_id, self._recipient = message_id, recipient

    def __call__(self, url: str) -> str | None:
        try:
            token = self._signer.make(
                TokenKind.CLICK, message_id=self._message_id, recipient=self._recipient, url=url
            )
        except ValueError:
            return None
        return f"{self._base}/t/c/{token}"


def _rewrite_anchor(tag: str, click: TrackLink) -> str:
    def replace(found: re.Match[str]) -> str:
        quoted = found.group(2)
        value = quoted[1:-1] if quoted[:1] in "\"'" else quoted
        url = html.unescape(value).strip()
        if not _WEB_LINK.fullmatch(url) or not urlsplit(url).netloc:
            return found.group(0)  # mailto:, tel:, #anchor, relative, template syntax...
        tracked = click(url)
        if tracked is None:
            return found.group(0)
        return f'{found.group(1)}"{html.escape(tracked, quote=True)}"'

    return _HREF.sub(replace, tag, count=1)


def _html_parts(message: EmailMessage) -> list[tuple[EmailMessage, str]]:
    parts: list[tuple[EmailMessage, str]] = []
    for part in message.walk():
        if part.get_content_type() != "text/html" or part.is_attachment():
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError):  # an unknown charset: leave the part untouched
            continue
        if isinstance(content, str):
            parts.append((part, content))
    return parts


class Personalizer:
    """Makes each recipient's copy of one message (parsed once, when HTML is rewritten)."""

    def __init__(
        self,
        raw: bytes,
        *,
        engagement: Engagement,
        signer: TrackingSigner,
        base: str,
        message_id: int,
    ) -> None:
        self._raw = raw
        self._signer, self._base, self._message_id = signer, base, message_id
        self._engagement = engagement
        head = raw[: m.start()] if (m := _HEADER_END.search(raw)) else raw
        self._unsubscribe = engagement.list_unsubscribe and not _LIST_UNSUBSCRIBE.search(
            b"\n" + head
        )
        self._parsed: EmailMessage | None = None
        self._html: list[tuple[EmailMessage, str]] = []
        if engagement.track_opens or engagement.track_clicks:
            parsed = BytesParser(_class=EmailMessage, policy=_POLICY).parsebytes(raw)
            self._html = _html_parts(parsed)
            if self._html:
                self._parsed = parsed

    def unsubscribe_url(self, recipient: str) -> str:
        token = self._signer.make(
            TokenKind.UNSUBSCRIBE, message_id=self._message_id, recipient=recipient
        )
        return f"{self._base}/u/{token}"

    def copy_for(self, recipient: str) -> bytes:
        body = self._raw if self._parsed is None else self._rewritten(recipient)
        if not self._unsubscribe:
            return body
        url = self.unsubscribe_url(recipient)
        headers = (
            f"List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        )
        return headers.encode("ascii") + body

    def _rewritten(self, recipient: str) -> bytes:
        assert self._parsed is not None
        click = (
            TrackLink(self._signer, self._base, self._message_id, recipient)
            if self._engagement.track_clicks
            else None
        )
        pixel = None
        if self._engagement.track_opens:
            token = self._signer.make(
                TokenKind.OPEN, message_id=self._message_id, recipient=recipient
            )
            pixel = f"{self._base}/t/o/{token}.gif"
        for part, original in self._html:
            nested = part is not self._parsed
            # quoted-printable: 7-bit safe whatever the upstream offers (no 8BITMIME needed)
            rewritten = rewrite_html(original, click=click, pixel=pixel)
            part.set_content(rewritten, subtype="html", cte="quoted-printable")
            if nested:  # EmailMessage.set_content adds MIME-Version, which belongs on top only
                del part["MIME-Version"]
        return self._parsed.as_bytes(policy=_POLICY)
